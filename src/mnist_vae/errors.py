"""The one base class of every error a user can fix from its message alone.

A stage prints such an error as one line (`cli.run_stage`); anything else is a bug and keeps
its traceback.
"""


class UserError(Exception):
    pass
