//! The console's own words that are new with the turn, blocked-step, deadline and phone
//! views, in one place so that they are easy to find and translate.

/// The heading of whose turn it is.
pub const NEXT_HEADING: &str = "下一步 办理人与期限";
/// Before the role titles of one step.
pub const WAITING_FOR: &str = "等待";
/// Between the role titles and the step's title.
pub const TO_DO: &str = "办理";
/// Beside a step the reader may take too.
pub const YOU_TOO: &str = "您可办理";
/// Before the children a state waits for.
pub const WAITING_CHILDREN: &str = "等待子流程完成:";
/// When no person can act and nothing is awaited.
pub const NOBODY_NOW: &str = "当前环节没有待人办理的操作,由系统按期限或条件推进。";
/// Before a deadline's title.
pub const DEADLINE: &str = "期限";
/// A deadline without a title.
pub const DEADLINE_UNTITLED: &str = "办理期限";
/// When the reader has nothing to do here.
pub const NOTHING_FOR_ME: &str = "当前环节没有您可以办理的操作;下一步由谁办理见上方。";
/// The heading of the read-only list of who else can act.
pub const OTHERS_HEADING: &str = "其他人可办理";
/// Under it.
pub const OTHERS_NOTE: &str = "只读:以下操作由其他角色办理。";
/// Above the reasons a step of mine cannot be taken yet.
pub const BLOCKED: &str = "暂不能办理:";
/// When a guard gave no reason.
pub const BLOCKED_NO_REASON: &str = "办理条件尚未满足。";
/// Beside the current step in the list of steps.
pub const HERE: &str = "当前";
/// Working time left before a deadline: `还剩 {}`.
pub const LEFT: &str = "还剩";
/// Working time past a deadline: `已逾期 {}`.
pub const OVERDUE_BY: &str = "已逾期";
/// The overdue mark in the inbox.
pub const OVERDUE: &str = "逾期";
/// After a time left counted in working time.
pub const WORKING_TIME: &str = "(工作时间)";
/// A deadline whose working time is used up before it falls due.
pub const NO_WORKING_TIME_LEFT: &str = "工作时间已用完,到期前无工作时段";
/// Units of working time.
pub const WORKING_DAYS: &str = "个工作日";
pub const DAYS: &str = "天";
pub const HOURS: &str = "小时";
pub const MINUTES: &str = "分钟";
/// The findings of a file whose saved version has errors.
pub const ON_DISK_HAS_ERRORS: &str =
    "磁盘上的文件有错误,未生效;以下是这些错误。正在运行的是上方所示的版本。";
/// The findings of a file without errors while another file keeps the set out of force.
pub const THIS_FILE_CLEAN_SET_REJECTED: &str =
    "本文件没有错误;但其他定义文件有错误,整套修改都未生效(见上方)。";
/// The home page's note of a failed reload, for process owners.
pub const RELOAD_FAILED_HOME: &str = "流程定义的最近一次修改未生效:文件有错误。";
/// The link from it.
pub const RELOAD_SEE: &str = "查看错误";
