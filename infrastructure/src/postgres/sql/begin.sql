-- Starts a batch's transaction.
BEGIN
