"""The dashboard's words in English and Simplified Chinese (the protocol's own Chinese terms)."""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "en"

_WORDS: dict[str, tuple[str, str]] = {
    "app": ("GridGuard dashboard", "GridGuard 能源管理看板"),
    "fleet": ("Fleet", "设备总览"),
    "site": ("Site", "站点"),
    "demand": ("Demand", "需量"),
    "strategies": ("Strategies", "策略"),
    "commands": ("Commands", "指令记录"),
    "alarms": ("Alarms", "告警"),
    "login": ("Log in", "登录"),
    "logout": ("Log out", "退出"),
    "user": ("User name", "用户名"),
    "password": ("Password", "密码"),
    "language": ("Language", "语言"),
    "search": ("Search", "搜索"),
    "search_hint": ("uid or name", "设备号或名称"),
    "status": ("Status", "状态"),
    "all": ("All", "全部"),
    "online": ("online", "在线"),
    "offline": ("offline", "离线"),
    "open_alarms": ("Open alarms", "未结束告警"),
    "grid_kw": ("Grid power now (kW)", "当前电网功率 (kW)"),
    "month_peak": ("This month's peak / limit (kW)", "本月峰值 / 限值 (kW)"),
    "drift": ("Drift", "配置漂移"),
    "in_drift": ("drift", "漂移"),
    "only_drift": ("Only devices in drift", "仅显示漂移设备"),
    "only_alarms": ("Only devices with open alarms", "仅显示有告警的设备"),
    "filter": ("Filter", "筛选"),
    "device": ("Device", "设备"),
    "site_name": ("Site name", "站点名称"),
    "prev": ("Previous", "上一页"),
    "next": ("Next", "下一页"),
    "page_of": ("devices {first}–{last} of {total}", "第 {first}–{last} 台，共 {total} 台"),
    "live": ("Live", "实时"),
    "meter": ("Meter", "电表"),
    "grid_total": ("grid total", "电网总功率"),
    "phase": ("phase", "相"),
    "baseline": ("baseline", "防逆流基线"),
    "target": ("demand target", "需量目标"),
    "storage_kw": ("storage kW (+ discharge)", "储能功率 kW (+放电)"),
    "soc": ("SOC %", "SOC %"),
    "pv_kw": ("PV kW", "光伏功率 kW"),
    "demand_15": ("15-minute demand", "15 分钟需量"),
    "month_limit": ("month's limit", "本月限值"),
    "history": ("History", "历史"),
    "range": ("Time range", "时间范围"),
    "hours_6": ("6 hours", "6 小时"),
    "day_1": ("1 day", "1 天"),
    "days_7": ("7 days", "7 天"),
    "days_30": ("30 days", "30 天"),
    "days_90": ("90 days", "90 天"),
    "hour_1": ("1 hour", "1 小时"),
    "show": ("Show", "显示"),
    "peak_table": ("Monthly demand peaks", "月度需量峰值"),
    "month": ("Month", "月份"),
    "peak_kw": ("Peak (kW)", "峰值 (kW)"),
    "peak_at": ("When", "发生时间"),
    "limit_kw": ("Limit (kW)", "限值 (kW)"),
    "headroom_kw": ("Headroom (kW)", "余量 (kW)"),
    "none": ("—", "—"),
    "reported": ("Reported strategies", "已上报策略"),
    "no_strategies": ("No strategy reported.", "暂无上报策略。"),
    "create": ("Create a strategy", "新建策略"),
    "edit": ("Edit (merge)", "编辑（合并）"),
    "delete": ("Delete", "删除"),
    "replace_all": ("Replace all (update_all)", "批量替换 (update_all)"),
    "include_new": ("Also add this new strategy", "同时新增此策略"),
    "send": ("Send", "发送"),
    "pending": ("pending…", "等待设备响应…"),
    "applied": ("applied", "已生效"),
    "rejected": ("rejected", "被拒绝"),
    "nothing_changed": ("Nothing changed: no field differs.", "未修改任何字段。"),
    "confirm_delete": ("Delete strategy {id}?", "删除策略 {id}？"),
    "read_only": ("Read-only: your role is viewer.", "只读：您的角色为查看者。"),
    "reconcile": ("Reconcile (re-apply the desired set)", "重新下发期望配置"),
    "drift_none": ("No drift: the EMS reports what was applied.", "无漂移：设备与下发配置一致。"),
    "drift_found": (
        "Drift: the EMS differs from what was applied.",
        "漂移：设备配置与下发不一致。",
    ),
    "id": ("Id", "编号"),
    "device_type": ("Device class", "设备类型"),
    "dt_2": ("storage", "储能"),
    "dt_3": ("PV", "光伏"),
    "dt_4": ("charging pile", "充电桩"),
    "ele_meter_id": ("Gateway meter id", "关口表编号"),
    "streaming_status": ("防逆流 anti-backflow", "防逆流"),
    "streaming_condition": ("Anti-backflow baseline", "防逆流基线"),
    "individual_phase_streaming_status": ("单相防逆流 single-phase anti-backflow", "单相防逆流"),
    "individual_phase_streaming_condition": ("Single-phase baseline", "单相防逆流基线"),
    "over_demand_status": ("防过需 over-demand protection", "防过需"),
    "over_demand_condition": ("Monthly demand limits", "每月需量限值"),
    "dynamic_demand_status": ("动态需量 dynamic demand", "动态需量"),
    "dynamic_demand_percentage": ("Dynamic demand percentage", "动态需量百分比"),
    "updated_by": ("Updated by", "修改人"),
    "enabled": ("enabled", "启用"),
    "disabled": ("disabled", "停用"),
    "when": ("When", "时间"),
    "who": ("Who", "操作人"),
    "op": ("Operation", "操作"),
    "code": ("Code", "返回码"),
    "latency": ("Latency (ms)", "耗时 (ms)"),
    "msg": ("Message", "消息"),
    "state": ("State", "状态"),
    "open": ("Open", "进行中"),
    "past": ("Past", "已结束"),
    "acknowledge": ("Acknowledge", "确认"),
    "acknowledged": ("acknowledged by {by}", "已由 {by} 确认"),
    "severity": ("Severity", "级别"),
    "kind": ("Kind", "类型"),
    "started": ("Started", "开始"),
    "ended": ("Ended", "结束"),
    "no_rows": ("Nothing to show.", "暂无数据。"),
    "wrong_login": ("Wrong user name or password.", "用户名或密码错误。"),
    "forbidden": ("Your role may not do this.", "您的角色无权执行此操作。"),
    "csrf": ("The form expired: reload the page and try again.", "表单已过期，请刷新后重试。"),
    "skip": ("Skip to content", "跳到正文"),
    "month_names": (
        "January,February,March,April,May,June,July,August,September,October,November,December",
        "一月,二月,三月,四月,五月,六月,七月,八月,九月,十月,十一月,十二月",
    ),
}


def pick_language(requested: str | None) -> str:
    return requested if requested in LANGUAGES else DEFAULT_LANGUAGE


def translator(language: str) -> Callable[..., str]:
    """``t(key, **values)``: the word in ``language`` (the key itself when unknown)."""
    index = LANGUAGES.index(pick_language(language))

    def t(key: str, **values: object) -> str:
        pair = _WORDS.get(key)
        text = pair[index] if pair else key
        return text.format(**values) if values else text

    return t


def month_names(language: str) -> list[str]:
    return translator(language)("month_names").split(",")
