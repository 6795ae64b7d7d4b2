# 迁移运行中的事项到流程的新版本:计划里每一条给流程负责人看的话。
migration-lands-in = 将从“{ $from }”迁到新版本的“{ $to }”
migration-lands-in-same = 留在“{ $to }”,改按新版本办理
migration-field-undeclared = “{ $field }”新版本已不再登记,原值保留在记录中
migration-field-set = “{ $field }”按迁移设定由 { $before } 改为 { $after }
migration-field-set-new = “{ $field }”按迁移设定为 { $after }
migration-signers-changed = 会签/审批人按新版本重新确定:{ $signers }
migration-signature-kept = 保留 { $actor }(“{ $role }”)的签字
migration-signature-dropped = 按迁移设定作废 { $actor }(“{ $role }”)的签字
migration-timer-kept = 期限“{ $timer }”保留,仍于 { $due } 到期
migration-timer-cancelled = 期限“{ $timer }”({ $due } 到期)取消:新版本的这一环节没有这一期限
migration-timer-armed = 按新版本新设期限“{ $timer }”,自迁移时起算,{ $due } 到期
migration-timer-rearmed = 期限“{ $timer }”(原定 { $due } 到期)按迁移设定取消,自迁移时起重新计算
migration-child = 子事项 { $child } 仍在办理{ $awaited ->
    [yes] ,新环节继续等待其办结
   *[no] ,新环节不再等待它
}
migration-route = 后续审批路线由“{ $before }”变为“{ $after }”
migration-blocked = 不能迁移:{ $reason }
migration-clean = 可以迁移
migration-blocker-state_removed = 新版本没有“{ $state }”这一环节,请指定迁到哪一环节(--map { $id }=新环节)
migration-blocker-unknown_target = 迁移设定把“{ $state }”迁到新版本没有的“{ $to }”
migration-blocker-lands_in_final = 迁移不会办结事项,不能迁到结束环节“{ $state }”
migration-blocker-stuck = 新版本的“{ $state }”没有任何办理、审批、期限或子流程可以继续,事项会停在这里
migration-blocker-signature_without_signer = 新版本的审批中没有“{ $role }”,{ $actor } 的签字无处保留(若确要作废,请在迁移设定中写 drop_signatures: true)
migration-blocker-approval_complete = 保留的签字已满足新版本“{ $state }”的审批,但迁移不会推进事项;请把它迁到审批之后的环节
migration-blocker-field_missing = 新版本要求在“{ $event }”时填写“{ $field }”,而本事项没有这一项;请在迁移设定的 set 中给出
migration-blocker-bad_value = 迁移设定给出的“{ $field }”不能使用:{ $reason }
migration-blocker-nothing_awaited = 新版本的“{ $state }”要等子流程办结,但本事项没有在办的子流程,会一直等下去
migration-blocker-script_failed = 按新版本计算期限或审批人时出错:{ $reason }
# `sopflow migrate` 在每份计划前后打印的话。
migration-instance = { $instance }(现处于“{ $state }”)
migration-migrated = { $instance }:已迁移,现处于新版本的“{ $state }”(第 { $seq } 步)
migration-left = { $instance }(现处于“{ $state }”)未迁移,原样保留:
migration-plan-summary = “{ $workflow }”迁到版本 { $version } 的计划:旧版本上在办的事项 { $considered } 件,可以迁移 { $clean } 件,受阻 { $blocked } 件;已在该版本的 { $current } 件。未写入任何内容。
migration-apply-summary = “{ $workflow }”在办事项 { $considered } 件中已迁到版本 { $version } 的 { $clean } 件;受阻未动 { $blocked } 件;已在该版本的 { $current } 件。
migration-apply-blocked = 有 { $blocked } 件事项未迁移(原因见上):请给出能解决的迁移设定后再运行同一命令,它只迁移剩下的事项。
