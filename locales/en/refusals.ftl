# Why a step was refused: what the person refused reads. Arguments are the titles from the
# workflow's YAML (the id where it gives none). Each says what is wrong and what to do; the
# page that shows it adds that nothing was written.

refusal-finished = This case is closed (its last step: { $state }); it takes no more actions.
refusal-stale = This case has moved on (you saw step { $expected }, it is now at step { $actual }); reload it and decide again.
refusal-unknown_event = The current step “{ $state }” has no action “{ $event }”.
refusal-unknown_event-offers = It offers: { $list }.
refusal-system_only = “{ $event }” is done by the system (when a deadline passes or a sub-process finishes), not by hand.
refusal-reserved_role = The role “system” is reserved for the system's own steps.
refusal-role_not_allowed = “{ $event }” is for { $allowed }; your roles: { $held }.
refusal-role_not_allowed-nobody = none
refusal-not_your_turn = This approval is signed in order: { $waiting_for } signs first.
refusal-already_signed = { $actor } has signed this approval already; someone else must sign.
refusal-guard_failed-silent = The conditions for “{ $event }” do not hold yet. The rule gives no reason; ask the process owner.
refusal-guard_error = The conditions for “{ $event }” could not be checked (a rule failed); ask the process owner.
refusal-script_failed = A rule of this process failed; ask the process owner.
refusal-missing_field = “{ $event }” needs “{ $field }”.
refusal-comment_required = “{ $event }” needs a comment: give the reason.
refusal-unknown_field = This process has no “{ $field }”.
refusal-field_not_writable = “{ $event }” may not fill in “{ $field }”.
refusal-field_not_writable-may = This step fills in: { $list }.
refusal-field_not_writable-none = This step takes a comment only.
refusal-field_fixed = “{ $field }” was settled as { $current } and an earlier decision rests on it; “{ $event }” may not change it.
refusal-too_long = “{ $field }” is too long: { $length } characters, at most { $limit }.
refusal-too_long-items = “{ $field }” has too many items: { $length }, at most { $limit }.
refusal-not_a_party = As { $role } you act only on cases of your own.
refusal-ill_typed = “{ $field }” must be { $expected }.
refusal-four_eyes = The same person may not do both “{ $earlier }” and “{ $step }”; someone else must.
refusal-unknown_state = This case's step is not in its process version; ask the administrator.
refusal-timer_not_pending = That deadline has passed already or was cancelled.
refusal-calendar = The business calendar cannot compute the deadline; ask the administrator.

# What every refusal adds.
cli-refused = refused: { $message }
refused = Refused
nothing-written = Nothing was written.

# What a field takes (the $expected of refusal-ill_typed).
expects-string = one line of text
expects-text = a text
expects-integer = a whole number
expects-number = a number
expects-money = an amount in yuan (at most 2 decimal places)
expects-bool = yes or no
expects-date = a date like 2026-03-01
expects-datetime = a date and time like 2026-03-01 09:30
expects-enum = one of: { $values }
expects-list = a list of values

# An approval's actions where no branch names them.
event-approve = Approve
event-reject = Reject
event-start = Start

# Between the items of a list.
list-separator = {", "}
