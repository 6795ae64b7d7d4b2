# 拒绝办理的原因:被拒绝的人读到的话。参数是流程 YAML 里的标题(没有标题时用 id)。
# 每条说明哪里不对、该怎么办;结尾不写"未作任何改动",由显示它的页面统一加上。

refusal-finished = 本事项已办结(最后环节:{ $state }),不能再办理。
refusal-stale = 本事项已有新进展(您看到的是第 { $expected } 步,现在已到第 { $actual } 步),请刷新后重新办理。
refusal-unknown_event = 当前环节“{ $state }”没有“{ $event }”这项操作。
refusal-unknown_event-offers = 当前可办理:{ $list }。
refusal-system_only = “{ $event }”由系统自动办理(期限到达或子流程办结时),不能手工办理。
refusal-reserved_role = “系统”身份只供系统自动办理使用。
refusal-role_not_allowed = “{ $event }”须由{ $allowed }办理;您的身份:{ $held }。
refusal-role_not_allowed-nobody = 无
refusal-not_your_turn = 本审批按顺序签署,须先由{ $waiting_for }签署。
refusal-already_signed = { $actor }已签署过本审批,须由其他人签署。
refusal-guard_failed-silent = “{ $event }”的办理条件尚未满足。规则没有说明原因,请联系流程负责人。
refusal-guard_error = 无法判断“{ $event }”的办理条件(规则出错),请联系流程负责人。
refusal-script_failed = 流程规则执行出错,请联系流程负责人。
refusal-missing_field = “{ $event }”需要填写“{ $field }”。
refusal-comment_required = “{ $event }”需要填写意见,请写明理由。
refusal-unknown_field = 本流程没有“{ $field }”这一项。
refusal-field_not_writable = “{ $event }”这一步不能填写“{ $field }”。
refusal-field_not_writable-may = 这一步可填写:{ $list }。
refusal-field_not_writable-none = 这一步只需填写意见。
refusal-field_fixed = “{ $field }”已确定为 { $current },此前的决定以它为依据,“{ $event }”不能再修改。
refusal-too_long = “{ $field }”太长:{ $length } 个字,最多 { $limit } 个字。
refusal-too_long-items = “{ $field }”项数太多:{ $length } 项,最多 { $limit } 项。
refusal-not_a_party = 以“{ $role }”身份只能办理与您本人有关的事项。
refusal-ill_typed = “{ $field }”应填写{ $expected }。
refusal-four_eyes = 同一人不能既办理“{ $earlier }”又办理“{ $step }”,请由其他人办理。
refusal-unknown_state = 本事项所处的环节已不在其流程版本中,请联系系统管理员。
refusal-timer_not_pending = 该期限已到达或已取消。
refusal-calendar = 工作日历无法计算期限,请联系系统管理员。

# 办理被拒绝时的统一说明。
cli-refused = 未办理:{ $message }
refused = 未办理
nothing-written = 未写入任何记录。

# 字段应填写的内容(用于 refusal-ill_typed 的 $expected)。
expects-string = 一行文字
expects-text = 文字
expects-integer = 整数
expects-number = 数字
expects-money = 金额(元,最多两位小数)
expects-bool = 是或否
expects-date = 日期,如 2026-03-01
expects-datetime = 日期和时间,如 2026-03-01 09:30
expects-enum = 以下之一:{ $values }
expects-list = 一组值

# 审批的默认操作名称(分支未写标题时)。
event-approve = 同意
event-reject = 退回
event-start = 发起

# 列表的分隔符。
list-separator = 、
