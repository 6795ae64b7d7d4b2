# Migrating running instances to a new version of their workflow: what a plan says to the process owner.
migration-lands-in = moves from “{ $from }” to “{ $to }” of the new version
migration-lands-in-same = stays in “{ $to }”, now under the new version
migration-field-undeclared = “{ $field }” is no longer declared; its value stays on record
migration-field-set = “{ $field }” is set from { $before } to { $after } by the mapping
migration-field-set-new = “{ $field }” is set to { $after } by the mapping
migration-signers-changed = the signers are worked out again under the new version: { $signers }
migration-signature-kept = the signature of { $actor } (“{ $role }”) is kept
migration-signature-dropped = the signature of { $actor } (“{ $role }”) is dropped, as the mapping says
migration-timer-kept = the deadline “{ $timer }” is kept, still due { $due }
migration-timer-cancelled = the deadline “{ $timer }” (due { $due }) is cancelled: the new version has no such deadline here
migration-timer-armed = the new deadline “{ $timer }” is set from the time of the migration, due { $due }
migration-timer-rearmed = the deadline “{ $timer }” (due { $due }) is cancelled and counted again from the time of the migration, as the mapping says
migration-child = the child { $child } is still running{ $awaited ->
    [yes] ; the new state still waits for it
   *[no] ; the new state no longer waits for it
}
migration-route = the way ahead changes from “{ $before }” to “{ $after }”
migration-blocked = cannot be migrated: { $reason }
migration-clean = can be migrated
migration-blocker-state_removed = the new version has no state “{ $state }”; say where it goes (--map { $id }=new_state)
migration-blocker-unknown_target = the mapping moves “{ $state }” to “{ $to }”, which the new version does not have
migration-blocker-lands_in_final = a migration does not finish an instance, so it cannot land in the final state “{ $state }”
migration-blocker-stuck = nothing leads out of “{ $state }” in the new version (no action, approval, deadline or child): the instance would stay there
migration-blocker-signature_without_signer = the new approval has no “{ $role }”, so the signature of { $actor } cannot be kept (write drop_signatures: true in the mapping to drop it)
migration-blocker-approval_complete = the signatures kept already complete the approval of “{ $state }”, but a migration moves nothing on; map the instance to the state after the approval
migration-blocker-field_missing = the new version requires “{ $field }” at “{ $event }”, and the instance has none; give it in the mapping's set
migration-blocker-bad_value = the mapping's value for “{ $field }” cannot be used: { $reason }
migration-blocker-nothing_awaited = “{ $state }” of the new version waits for children, but none is running: it would wait for ever
migration-blocker-script_failed = working out deadlines or signers under the new version failed: { $reason }
# What `sopflow migrate` prints around each plan.
migration-instance = { $instance } in “{ $state }”
migration-migrated = { $instance }: migrated, now in “{ $state }” of the new version (step { $seq })
migration-left = { $instance } in “{ $state }” is left where it is:
migration-plan-summary = Plan for “{ $workflow }” to version { $version }: { $considered } running instance(s) on other versions, { $clean } can be migrated, { $blocked } blocked; { $current } already on that version. Nothing was written.
migration-apply-summary = Migrated { $clean } of { $considered } running instance(s) of “{ $workflow }” to version { $version }; { $blocked } blocked and left where they are; { $current } already on that version.
migration-apply-blocked = { $blocked } instance(s) were not migrated (see why above): give a mapping that unblocks them and run the same command again; it moves only what is left.
