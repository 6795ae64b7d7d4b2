# The web console's words, grouped by page. The names of workflows, states, roles and fields
# come from the workflow's YAML, not from here.

## The frame: top bar, navigation, footer

console-layout-brand = workflow desk
console-layout-nav-tasks = My tasks
console-layout-nav-instances = Instances
console-layout-nav-workflows = Workflows
console-layout-nav-audit = Audit
console-layout-nav-notices = Notices
console-layout-sign-out = Sign out
console-layout-language = Language
console-layout-times = Times are Beijing time (UTC+8)

## Error pages

console-error-not-found = Not found
console-error-forbidden = Not allowed
console-error-unauthorized = Sign in first
console-error-bad-request = Bad request
console-error-failed = Something went wrong
console-error-general = The request could not be completed.
console-error-failed-detail = The server failed while answering; the failure is logged. Try again later or ask the administrator.
console-error-unknown-instance = There is no such instance, or you may not read it.
console-error-unknown-workflow = There is no such workflow in force.
console-error-unknown-version = This workflow has no such stored version.
console-error-unknown-language = Unknown language: choose 中文 or English.
console-error-csrf = The form's security token does not match this session; reload the page and try again.
console-error-back = Back to my tasks

## Sign-in page

console-signin-title = Sign in
console-signin-heading = Sign in
console-signin-user = User id
console-signin-password = Password
console-signin-submit = Sign in
console-signin-cross-site = Sign in from this site's sign-in page.
console-signin-expired = The sign-in form has expired; sign in again (cookies must be enabled).
console-signin-throttled = Too many sign-in attempts; try again in { $n } s.
console-signin-busy = The server is busy checking other sign-ins; try again in a moment.
console-signin-bad-password = Wrong user id or password.
console-signin-demo-remote = Demo users can sign in only on this machine, not through a proxy.
console-signin-demo-heading = Demo users
console-signin-demo-note = On this machine only; every password is
console-signin-demo-user = User
console-signin-demo-roles = Roles
console-signin-demo-as = Sign in as this user

## My tasks (home page)

console-inbox-title = My tasks
console-inbox-heading = My tasks
console-inbox-empty = Nothing waits for your roles.
console-inbox-more = The { $shown } with the earliest deadlines of { $total } are shown; all are listed at
console-inbox-col-workflow = Workflow
console-inbox-col-state = State
console-inbox-col-key = Business key
console-inbox-col-actions = I may
console-inbox-col-started = Started
console-inbox-col-due = Due
console-inbox-overdue = Overdue

## Deadlines and working time left

console-deadline = Deadline
console-deadline-untitled = Deadline to act
console-time-working-days = { $n ->
    [one] 1 working day
   *[other] { $n } working days
}
console-time-days = { $n ->
    [one] 1 day
   *[other] { $n } days
}
console-time-hours = { $n ->
    [one] 1 hour
   *[other] { $n } hours
}
console-time-minutes = { $n ->
    [one] 1 minute
   *[other] { $n } minutes
}
console-time-left = { $span } left
console-time-left-working = { $span } of working time left
console-time-overdue = Overdue
console-time-overdue-by = Overdue by { $span }
console-time-overdue-by-working = Overdue by { $span } of working time
console-time-no-working-time-left = No working time left before it falls due

## Starting

console-start-heading = Start a workflow
console-start-none = None of your roles starts a workflow.
console-start-workflow = Workflow
console-start-key = Business key
console-start-optional = (optional)
console-start-key-example = e.g. HW-2026-031
console-start-submit = Start
console-start-workflow-submit = Start { $workflow }

## Finding instances

console-search-title = Instances
console-search-heading = Find instances
console-search-workflow = Workflow
console-search-any = Any
console-search-state = State
console-search-state-hint = Choose a workflow first, or type a state id
console-search-key = Business key
console-search-submit = Search
console-search-results = Instances
console-search-limited = Only the first { $n } are listed; narrow the search.
console-search-none = No instance matches.
console-search-col-instance = Instance
console-search-col-updated = Updated

## The instance page

console-instance-state = State
console-instance-finished = Finished
console-instance-overdue = Overdue
console-instance-version = Version
console-instance-step-count = step { $n }
console-instance-diagram = Diagram
console-instance-here = Now
console-instance-started = Started; the instance is in { $state }.
console-instance-done = Done: “{ $event }”; the instance is now in { $state }.
console-refusal-heading = Not done
console-next-heading = Next: who acts, and by when
console-next-waiting-for = Waiting for { $roles } to take “{ $step }”
console-next-you-too = You may act
console-next-waiting-children = Waiting for these to finish:
console-next-nobody = Nobody needs to act now; the system moves on by its deadlines or conditions.
console-actions-heading = My actions
console-actions-finished = The instance has finished.
console-actions-nothing = Nothing here is yours to do now; who acts next is shown above.
console-actions-others = Others can act
console-actions-others-note = Read-only: other roles take these steps.
console-actions-blocked = Not possible yet:
console-actions-blocked-no-reason = The step's conditions do not hold yet.

## Action forms

console-form-comment = Comment
console-form-required = required
console-form-not-given = Not given
console-form-yes = Yes
console-form-no = No
console-form-one-per-line = One item per line
console-form-choose = Choose

## Data, deadlines, related instances, approval chain and history

console-system = System
console-data-heading = Data
console-data-empty = Nothing recorded yet.
console-timers-heading = Pending deadlines
console-timers-timer = Deadline
console-timers-due = Due
console-timers-fires = Then
console-timers-is-due = Due
console-family-heading = Related instances
console-family-parent = Parent:
console-family-child = Child:
console-family-running = Running
console-chain-heading = Approval chain
console-chain-kind = Kind
console-chain-step = Step
console-chain-actor = By
console-chain-role = Role
console-chain-time = Time
console-chain-comment = Comment and grounds
console-chain-kind-start = Start
console-chain-kind-approval = Approval
console-chain-kind-rejection = Rejection
console-chain-kind-decision = Decision
console-chain-kind-system = System
console-chain-kind-migration = Migration
console-chain-signature = Signer { $signer } of { $of }: { $title }
console-chain-conditions-held = The step's conditions held
console-history-heading = History
console-history-event = Step
console-history-states = States
console-history-start = Started

## Workflows and a workflow's page

console-workflows-title = Workflows
console-workflows-heading = Workflows
console-workflows-source = Source
console-workflows-states = States
console-workflows-roles = Roles
console-workflow-old-version = This is stored version { $version }, not the one new instances start on:
console-workflow-current-link = see the current one
console-workflow-manual = Manual
console-workflow-section = Section
console-workflow-lines = Lines
console-workflow-file = File
console-workflow-calendar = Calendar
console-workflow-yaml = Definition file
console-workflow-rules = Rules:
console-workflow-reload-rejected = The files have errors; they were not put in force.
console-workflow-version-stays = Version { $version } stays in force.
console-workflow-versions-stay = The versions in force stay.
console-workflow-errors = { $n ->
    [one] 1 error
   *[other] { $n } errors
}
console-workflow-reload-failed-home = The last change to the workflow definitions was not put in force: the files have errors.
console-workflow-reload-see = See the errors
console-workflow-findings = Validation
console-workflow-on-disk-has-errors = The files on disk have errors and are not in force; these are the errors. What runs is the version shown above.
console-workflow-file-clean-set-rejected = This file has no errors, but other definition files do, so none of the changes are in force (see above).
console-workflow-clean = ✓ No errors or warnings.
console-workflow-fields = Fields
console-workflow-field = Field
console-workflow-title-col = Title
console-workflow-type = Type
console-workflow-required-on = Required on
console-workflow-parameters = Parameters
console-workflow-parameter = Parameter
console-workflow-default = Default
console-workflow-versions = Stored versions
console-workflow-versions-note = A running instance keeps the version it started on.
console-workflow-current = current
console-workflow-shown = shown

## Audit

console-audit-title = Audit
console-audit-heading = Audit
console-audit-not-auditor = The audit pages are for { $auditor }; your roles: { $held }.
console-audit-read-only = Read-only: verifying and exporting change nothing.
console-audit-verify-heading = Verify the store
console-audit-verify-note = Checks every entry's hash chain, the snapshots, the indexes and the stored definitions.
console-audit-verify-submit = Verify
console-audit-export-heading = Export approvals (CSV)
console-audit-export-note = One row per step a person took, dates as whole days in Beijing time; the same as
console-audit-export-from = From
console-audit-export-to = To
console-audit-export-submit = Download CSV
console-audit-intact = ✓ The store is intact.
console-audit-problems = { $n ->
    [one] 1 problem found.
   *[other] { $n } problems found.
}
console-audit-problems-shown = Only the first { $n } are listed; this lists them all:
console-audit-instances = Instances
console-audit-entries = Entries checked
console-audit-definitions = Definitions
console-audit-digest = Digest
console-audit-as-of = as of { $time }
console-audit-code = Code
console-audit-detail = Detail
console-audit-bad-bound = Bad date ({ $detail }).

# Readable numbers (a workflow's `number` format).
console-search-number = Number
console-search-number-example = (for example DH-2026-0001)
console-search-col-number = Number

## Migrating running instances to the version in force (a process owner's page)
console-history-migrated = Migrated: { $from } → { $to }
console-migration-title = Migration
console-migration-gate-heading = Running instances on older versions
console-migration-gate = { $older } running instance(s) still run on older versions; { $clean } of them can be migrated to the current version as they are
console-migration-gate-none = No running instance stays on an older version
console-migration-gate-at = Counted at { $at }
console-migration-open = See the migration plan
console-migration-heading = Migrate to the current version
console-migration-version = Current version { $version }
console-migration-summary = { $considered } running instance(s) on older versions: { $clean } can be migrated, { $blocked } cannot yet
console-migration-none = No running instance needs migrating
console-migration-truncated = Only the first { $shown } instances' plans are listed; the counts above cover them all
console-migration-mapping-heading = State mapping
console-migration-mapping-note = The current version has none of these states; choose where the instances waiting in them go
console-migration-mapping-keep = (not mapped)
console-migration-mapping-submit = Plan again with this mapping
console-migration-apply-heading = Migrate
console-migration-comment = Why (recorded in each instance's history)
console-migration-apply-submit = Migrate the { $clean } instance(s) that can be migrated
console-migration-clean-heading = Can be migrated
console-migration-blocked-heading = Cannot be migrated yet (they stay where they are)
console-migration-done = Migrated { $clean } instance(s); { $blocked } stay on their version
console-migration-bad-mapping = The state mapping is wrong: a chosen state is not in the current version, or is a final state
console-migration-not-owner = Only the { $owner } migrates instances

## Notices: what workflows told people, and dead letters (process owners)

console-notices-title = Notices
console-notices-heading = My notices
console-notices-unread = { $count } unread
console-notices-empty = No notices.
console-notices-new = new
console-notices-mark-all = Mark all as read
console-notices-mark = Mark as read
console-notices-col-time = Time
console-notices-col-notice = Notice
console-notices-col-instance = Instance
console-deliveries-heading = Dead letters
console-deliveries-counts = { $unrouted } to route · { $queued } to send · { $dead } dead letters
console-deliveries-empty = No dead letters.
console-deliveries-col-channel = Channel
console-deliveries-col-message = Message
console-deliveries-col-error = Last error
console-deliveries-col-attempts = Attempts
console-deliveries-retry = Send again
console-deliveries-retry-all = Send all again
console-deliveries-revived = { $count } message(s) queued again; the delivery loop sends them now.
