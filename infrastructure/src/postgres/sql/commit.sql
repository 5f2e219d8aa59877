-- Ends a batch's transaction.
COMMIT
