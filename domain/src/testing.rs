//! The given/when/then harness every aggregate's tests use:
//! `given(events).when(command).then(events)` or `.then_error(error)`.
//!
//! `given` folds events into a state with `apply` (as a replay does); `when` asks `decide`;
//! `then` checks the events and applies them, so scenarios chain. A scenario decides at a
//! virtual moment ([`TEST_EPOCH`] until `.at` moves it), as [`TEST_ACTOR`], with a jitter of
//! 0.5. Nothing here is compiled outside tests.

use crate::kernel::{Aggregate, DecisionContext, DomainError};
use chrono::{DateTime, Utc};
use std::fmt::Debug;

/// The moment every scenario starts at.
pub const TEST_EPOCH: DateTime<Utc> = DateTime::from_timestamp_nanos(1_767_225_600_000_000_000);
/// Who asks in every scenario unless `.by` says otherwise.
pub const TEST_ACTOR: &str = "user:tester";

/// The context a scenario decides in before it is changed.
pub fn test_context() -> DecisionContext {
    DecisionContext {
        now: TEST_EPOCH,
        actor: TEST_ACTOR.into(),
        jitter: 0.5,
    }
}

/// A state reached by folding events, ready for a command.
#[derive(Debug, Clone)]
pub struct Scenario<A: Aggregate> {
    state: A,
    context: DecisionContext,
}

/// The state that `events` fold into.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Scenario<A> {
    let mut state = A::default();
    for event in events {
        state.apply(&event);
    }
    Scenario {
        state,
        context: test_context(),
    }
}

/// Runs `command` on `state` in `context` and applies what it decided, as the repository does;
/// answers the events.
pub fn execute<A: Aggregate>(
    state: &mut A,
    command: &A::Command,
    context: &DecisionContext,
) -> Result<Vec<A::Event>, DomainError> {
    let events = state.decide(command, context)?;
    events.iter().for_each(|event| state.apply(event));
    Ok(events)
}

/// What a command decided in a scenario.
#[must_use = "a decision is checked with then, then_error or events"]
pub struct Outcome<A: Aggregate> {
    state: A,
    context: DecisionContext,
    decided: Result<Vec<A::Event>, DomainError>,
}

impl<A: Aggregate + Debug> Scenario<A>
where
    A::Event: PartialEq + Debug,
{
    /// The state the scenario has reached.
    pub fn state(&self) -> &A {
        &self.state
    }

    /// The scenario, deciding from now on at `now`.
    pub fn at(mut self, now: DateTime<Utc>) -> Self {
        self.context.now = now;
        self
    }

    /// The scenario after `commands`, each of which must succeed.
    pub fn after(mut self, commands: impl IntoIterator<Item = A::Command>) -> Self
    where
        A::Command: Debug,
    {
        for command in commands {
            if let Err(err) = execute(&mut self.state, &command, &self.context) {
                panic!("{command:?} was refused on the way: {err}");
            }
        }
        self
    }

    /// Asks the aggregate to decide on `command`.
    pub fn when(self, command: A::Command) -> Outcome<A> {
        let decided = self.state.decide(&command, &self.context);
        Outcome {
            state: self.state,
            context: self.context,
            decided,
        }
    }
}

impl<A: Aggregate + Debug> Outcome<A>
where
    A::Event: PartialEq + Debug,
{
    /// Checks that exactly `expected` happened, and goes on from the state they lead to.
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) -> Scenario<A> {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        let events = self.events();
        assert_eq!(events.1, expected, "decided events");
        events.0
    }

    /// The error the command was refused with, if it was.
    pub fn decided_error(&self) -> Option<&DomainError> {
        self.decided.as_ref().err()
    }

    /// Checks that the command was refused with `expected`.
    pub fn then_error(self, expected: DomainError) {
        match self.decided {
            Ok(events) => panic!("expected {expected:?}, but it decided {events:?}"),
            Err(err) => assert_eq!(err, expected),
        }
    }

    /// The scenario after the decided events, and the events, for checks that do not name
    /// every field; panics if the command was refused.
    pub fn events(self) -> (Scenario<A>, Vec<A::Event>) {
        let events = match self.decided {
            Ok(events) => events,
            Err(err) => panic!("the command was refused: {err}"),
        };
        let mut state = self.state;
        events.iter().for_each(|event| state.apply(event));
        (
            Scenario {
                state,
                context: self.context,
            },
            events,
        )
    }

    /// The decision itself: events, or why the command was refused.
    pub fn decided(&self) -> &Result<Vec<A::Event>, DomainError> {
        &self.decided
    }
}
