# 网页流程台的文字,按页面分组。流程、环节、角色、字段的名称来自流程 YAML,不在这里。

## 页框:顶栏、导航、页脚

console-layout-brand = 流程台
console-layout-nav-tasks = 待办
console-layout-nav-instances = 实例
console-layout-nav-workflows = 流程
console-layout-nav-audit = 审计
console-layout-nav-notices = 通知
console-layout-sign-out = 退出
console-layout-language = 语言
console-layout-times = 时间均为北京时间 (UTC+8)

## 出错页面

console-error-not-found = 找不到
console-error-forbidden = 不允许
console-error-unauthorized = 请先登录
console-error-bad-request = 请求有误
console-error-failed = 出错了
console-error-general = 请求无法完成。
console-error-failed-detail = 服务器处理时出错,已记录;请稍后重试或联系系统管理员。
console-error-unknown-instance = 找不到这个事项,或您无权查看。
console-error-unknown-workflow = 没有这个流程,或它当前未生效。
console-error-unknown-version = 这个流程没有该存档版本。
console-error-unknown-language = 不支持该语言,请选择中文或 English。
console-error-csrf = 表单已失效:请刷新页面后重试。
console-error-back = 返回待办

## 登录页

console-signin-title = 登录
console-signin-heading = 登录
console-signin-user = 用户名
console-signin-password = 密码
console-signin-submit = 登录
console-signin-cross-site = 请从本站的登录页面登录。
console-signin-expired = 登录页面已过期,请重新输入并登录(需要启用 Cookie)。
console-signin-throttled = 登录尝试过于频繁,请 { $n } 秒后再试。
console-signin-busy = 服务器正忙,请稍后再试。
console-signin-bad-password = 用户名或密码不正确。
console-signin-demo-remote = 演示账号只能在本机直接使用(不经代理)。
console-signin-demo-heading = 演示账号
console-signin-demo-note = 仅限本机,密码均为
console-signin-demo-user = 用户
console-signin-demo-roles = 角色
console-signin-demo-as = 以此身份登录

## 待办(首页)

console-inbox-title = 待办
console-inbox-heading = 待办
console-inbox-empty = 没有等待您处理的事项。
console-inbox-more = 显示最早到期的 { $shown } 条,共 { $total } 条;全部见
console-inbox-col-workflow = 流程
console-inbox-col-state = 当前环节
console-inbox-col-key = 业务编号
console-inbox-col-actions = 我可以
console-inbox-col-started = 发起
console-inbox-col-due = 期限
console-inbox-overdue = 逾期

## 期限与剩余工作时间

console-deadline = 期限
console-deadline-untitled = 办理期限
console-time-working-days = { $n } 个工作日
console-time-days = { $n } 天
console-time-hours = { $n } 小时
console-time-minutes = { $n } 分钟
console-time-left = 还剩 { $span }
console-time-left-working = 还剩 { $span }(工作时间)
console-time-overdue = 已逾期
console-time-overdue-by = 已逾期 { $span }
console-time-overdue-by-working = 已逾期 { $span }(工作时间)
console-time-no-working-time-left = 工作时间已用完,到期前无工作时段

## 发起

console-start-heading = 发起新流程
console-start-none = 您的角色不能发起任何流程。
console-start-workflow = 流程
console-start-key = 业务编号
console-start-optional = (可选)
console-start-key-example = 例如 HW-2026-031
console-start-submit = 发起
console-start-workflow-submit = 发起 { $workflow }

## 查找实例

console-search-title = 实例
console-search-heading = 查找实例
console-search-workflow = 流程
console-search-any = 全部
console-search-state = 环节
console-search-state-hint = 先选流程,或填写环节编号
console-search-key = 业务编号
console-search-submit = 查找
console-search-results = 实例
console-search-limited = 只列出前 { $n } 个;请缩小范围。
console-search-none = 没有符合条件的实例。
console-search-col-instance = 实例
console-search-col-updated = 更新

## 实例页

console-instance-state = 当前环节
console-instance-finished = 已结束
console-instance-overdue = 已超期
console-instance-version = 版本
console-instance-step-count = 第 { $n } 步
console-instance-diagram = 流程图
console-instance-here = 当前
console-instance-started = 已发起,当前环节:{ $state }。
console-instance-done = 已提交“{ $event }”,当前环节:{ $state }。
console-refusal-heading = 未能办理
console-next-heading = 下一步 办理人与期限
console-next-waiting-for = 等待 { $roles } 办理「{ $step }」
console-next-you-too = 您可办理
console-next-waiting-children = 等待子流程完成:
console-next-nobody = 当前环节没有待人办理的操作,由系统按期限或条件推进。
console-actions-heading = 我可以办理
console-actions-finished = 流程已结束。
console-actions-nothing = 当前环节没有您可以办理的操作;下一步由谁办理见上方。
console-actions-others = 其他人可办理
console-actions-others-note = 只读:以下操作由其他角色办理。
console-actions-blocked = 暂不能办理:
console-actions-blocked-no-reason = 办理条件尚未满足。

## 办理表单

console-form-comment = 意见
console-form-required = 必填
console-form-not-given = 不填
console-form-yes = 是
console-form-no = 否
console-form-one-per-line = 每行一项
console-form-choose = 请选择

## 资料、期限、关联实例、审批链与历史

console-system = 系统
console-data-heading = 资料
console-data-empty = 尚未填写。
console-timers-heading = 期限
console-timers-timer = 期限
console-timers-due = 到期
console-timers-fires = 到期后
console-timers-is-due = 已到期
console-family-heading = 关联实例
console-family-parent = 上级流程:
console-family-child = 子流程:
console-family-running = 进行中
console-chain-heading = 审批链
console-chain-kind = 类别
console-chain-step = 办理
console-chain-actor = 经办人
console-chain-role = 角色
console-chain-time = 时间
console-chain-comment = 意见与依据
console-chain-kind-start = 发起
console-chain-kind-approval = 审批
console-chain-kind-rejection = 退回
console-chain-kind-decision = 办理
console-chain-kind-system = 系统
console-chain-kind-migration = 版本迁移
console-chain-signature = 第 { $signer }/{ $of } 位签署:{ $title }
console-chain-conditions-held = 办理条件已满足
console-history-heading = 历史
console-history-event = 事项
console-history-states = 环节
console-history-start = 发起流程

## 流程列表与流程页

console-workflows-title = 流程
console-workflows-heading = 流程
console-workflows-source = 出处
console-workflows-states = 环节
console-workflows-roles = 角色
console-workflow-old-version = 这是存档版本 { $version },不是新实例所用的版本。
console-workflow-current-link = 查看当前版本
console-workflow-manual = 出处
console-workflow-section = 章节
console-workflow-lines = 行
console-workflow-file = 文件
console-workflow-calendar = 日历
console-workflow-yaml = 定义文件
console-workflow-rules = 规则:
console-workflow-reload-rejected = 定义文件有错误,未生效。
console-workflow-version-stays = 版本 { $version } 继续有效。
console-workflow-versions-stay = 现有版本继续有效。
console-workflow-errors = { $n } 个错误
console-workflow-reload-failed-home = 流程定义的最近一次修改未生效:文件有错误。
console-workflow-reload-see = 查看错误
console-workflow-findings = 校验结果
console-workflow-on-disk-has-errors = 磁盘上的文件有错误,未生效;以下是这些错误。正在运行的是上方所示的版本。
console-workflow-file-clean-set-rejected = 本文件没有错误;但其他定义文件有错误,整套修改都未生效(见上方)。
console-workflow-clean = ✓ 没有错误或警告。
console-workflow-fields = 资料项
console-workflow-field = 字段
console-workflow-title-col = 名称
console-workflow-type = 类型
console-workflow-required-on = 必填于
console-workflow-parameters = 参数
console-workflow-parameter = 参数
console-workflow-default = 默认值
console-workflow-versions = 已存版本
console-workflow-versions-note = 运行中的实例始终使用其发起时的版本。
console-workflow-current = 当前
console-workflow-shown = 正在查看

## 审计

console-audit-title = 审计
console-audit-heading = 审计
console-audit-not-auditor = 审计页面仅供{ $auditor }使用;您的身份:{ $held }。
console-audit-read-only = 只读:核验与导出不改变任何记录。
console-audit-verify-heading = 核验存储
console-audit-verify-note = 逐条检查历史记录的哈希链、快照、索引与定义版本。
console-audit-verify-submit = 开始核验
console-audit-export-heading = 导出审批记录(CSV)
console-audit-export-note = 每一步人工办理一行,日期按北京时间整日计算,与以下命令相同:
console-audit-export-from = 自
console-audit-export-to = 至
console-audit-export-submit = 下载 CSV
console-audit-intact = ✓ 存储完好。
console-audit-problems = 发现 { $n } 个问题。
console-audit-problems-shown = 只列出前 { $n } 个;以下命令列出全部:
console-audit-instances = 实例
console-audit-entries = 记录
console-audit-definitions = 定义版本
console-audit-digest = 摘要
console-audit-as-of = 截至 { $time }
console-audit-code = 代码
console-audit-detail = 说明
console-audit-bad-bound = 日期有误({ $detail })。

# Readable numbers (a workflow's `number` format).
console-search-number = 编号
console-search-number-example = (例如 DH-2026-0001)
console-search-col-number = 编号

## Migrating running instances to the version in force (a process owner's page)
console-history-migrated = 版本迁移:{ $from } → { $to }
console-migration-title = 版本迁移
console-migration-gate-heading = 旧版本上的在办实例
console-migration-gate = { $older } 个在办实例仍按旧版本运行,其中 { $clean } 个可以直接迁移到当前版本
console-migration-gate-none = 没有在办实例停留在旧版本上
console-migration-gate-at = 统计于 { $at }
console-migration-open = 查看迁移计划
console-migration-heading = 迁移到当前版本
console-migration-version = 当前版本 { $version }
console-migration-summary = 旧版本上共 { $considered } 个在办实例:{ $clean } 个可以迁移,{ $blocked } 个暂不能迁移
console-migration-none = 没有需要迁移的在办实例
console-migration-truncated = 只列出前 { $shown } 个实例的计划;上面的数目包括全部实例
console-migration-mapping-heading = 状态对应
console-migration-mapping-note = 当前版本没有下列状态;请为停在这些状态的实例选择迁移后所在的状态
console-migration-mapping-keep = (不指定)
console-migration-mapping-submit = 按此对应重新生成计划
console-migration-apply-heading = 执行迁移
console-migration-comment = 迁移说明(记入每个实例的历史)
console-migration-apply-submit = 迁移 { $clean } 个可迁移的实例
console-migration-clean-heading = 可以迁移
console-migration-blocked-heading = 暂不能迁移(保留在原版本)
console-migration-done = 已迁移 { $clean } 个实例;{ $blocked } 个保留在原版本
console-migration-bad-mapping = 状态对应有误:所选状态不在当前版本中,或是结束状态
console-migration-not-owner = 只有{ $owner }可以迁移实例

## 通知:工作流发出的通知,以及投递失败的消息(流程负责人)

console-notices-title = 通知
console-notices-heading = 我的通知
console-notices-unread = { $count } 条未读
console-notices-empty = 暂无通知。
console-notices-new = 未读
console-notices-mark-all = 全部标为已读
console-notices-mark = 标为已读
console-notices-col-time = 时间
console-notices-col-notice = 通知
console-notices-col-instance = 事项
console-deliveries-heading = 投递失败的消息
console-deliveries-counts = 待路由 { $unrouted } 条 · 待发送 { $queued } 条 · 投递失败 { $dead } 条
console-deliveries-empty = 没有投递失败的消息。
console-deliveries-col-channel = 渠道
console-deliveries-col-message = 消息
console-deliveries-col-error = 最后一次错误
console-deliveries-col-attempts = 已尝试
console-deliveries-retry = 重新发送
console-deliveries-retry-all = 全部重新发送
console-deliveries-revived = 已重新排队 { $count } 条消息,投递程序会立即发送。
