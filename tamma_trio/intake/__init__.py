"""Every door's way in: events and requests become NewTasks here, and reach the store through
one "store, then wake" path (``Intake``).

The mapping modules are pure functions (an event in, tasks or an "ignored" verdict out), so each
door's rules are tested without a server; only ``submit.Intake`` touches the store.
"""

from tamma_trio.intake.submit import Intake, Source

__all__ = ["Intake", "Source"]
