/**
 * The one vocabulary (CONSOLE-03, WORDS-01): every word a person reads, in zh-CN and English, for the
 * server (notices, error messages, explanations) and the console (re-exported by api/types.ts). Plain data
 * and plain functions of values, no I/O: the rules, the API and the pages call them.
 *
 * One name per thing, everywhere: the SOS rule, the help button and the `sos` event are 紧急求助; the
 * entrance is 入户门 (rooms.ts). A table here is typed `Record<Lang, Record<K, string>>`, and
 * test/dispatcher/words.test.ts fails on a key that one language has and the other lacks.
 */
import type { AlertState, Outcome, PhoneCategory, RuleId, Severity } from './alerts/model.ts';
import { isRoom, ROOM_LABELS, ROOMS } from './rooms.ts';

export type Lang = 'zh' | 'en';
export const LANGS: readonly Lang[] = ['zh', 'en'];
/** One sentence in both languages; a reader takes `text[lang]`. */
export type Texts = Record<Lang, string>;

export { ROOM_LABELS };

export const RULE_LABELS: Record<Lang, Record<RuleId, string>> = {
  zh: {
    FALL: '跌倒',
    SOS: '紧急求助',
    NIGHT_EXIT: '夜间外出',
    NO_MORNING_ACTIVITY: '晨起无活动',
    INACTIVITY: '长时间无活动',
    BATHROOM_DWELL: '卫生间滞留',
    DOOR_LEFT_OPEN: '门未关',
    DEVICE_OFFLINE: '设备离线',
    LOW_BATTERY: '电量低',
    HOME_UNWATCHED: '本户未被看护',
    PHONE_REPORT: '来电报告',
  },
  en: {
    FALL: 'Fall',
    SOS: 'SOS',
    NIGHT_EXIT: 'Night exit',
    NO_MORNING_ACTIVITY: 'No morning activity',
    INACTIVITY: 'Inactivity',
    BATHROOM_DWELL: 'Bathroom dwell',
    DOOR_LEFT_OPEN: 'Door left open',
    DEVICE_OFFLINE: 'Device offline',
    LOW_BATTERY: 'Low battery',
    HOME_UNWATCHED: 'Home not watched',
    PHONE_REPORT: 'Phoned-in report',
  },
};

/** Device kinds (SPEC §3: `fall`, `door`, `motion`, `button`). */
/** ALERT-03: what a caller reported, in both languages (the alert's explanation, the console's form). */
export const PHONE_CATEGORY_LABELS: Record<Lang, Record<PhoneCategory, string>> = {
  zh: {
    fall: '报告跌倒',
    unwell: '身体不适',
    no_answer: '敲门无应答',
    wandering: '走失',
    other: '其他',
  },
  en: {
    fall: 'fall reported',
    unwell: 'unwell',
    no_answer: 'no answer at the door',
    wandering: 'wandering',
    other: 'other',
  },
};

export const KIND_LABELS: Record<Lang, Record<'fall' | 'door' | 'motion' | 'button', string>> = {
  zh: { fall: '跌倒雷达', door: '门磁', motion: '人体移动传感器', button: '紧急求助按钮' },
  en: { fall: 'Fall radar', door: 'Door contact', motion: 'Motion sensor', button: 'Help button' },
};

/** Event types of the device protocol (DEV-04) and the log's presence records. */
export const EVENT_LABELS: Record<Lang, Record<string, string>> = {
  zh: {
    fall: '跌倒',
    door: '门磁',
    motion: '人体移动',
    sos: '紧急求助',
    heartbeat: '心跳',
    presence: '在线状态',
  },
  en: {
    fall: 'fall',
    door: 'door',
    motion: 'motion',
    sos: 'SOS',
    heartbeat: 'heartbeat',
    presence: 'presence',
  },
};

export const STATE_LABELS: Record<Lang, Record<AlertState, string>> = {
  zh: {
    raised: '新告警',
    notified: '已通知',
    accepted: '已接单',
    en_route: '已出发',
    on_site: '已到达',
    resolved: '处置完成',
    cancelled: '已取消',
  },
  en: {
    raised: 'Raised',
    notified: 'Notified',
    accepted: 'Accepted',
    en_route: 'En route',
    on_site: 'On site',
    resolved: 'Resolved',
    cancelled: 'Cancelled',
  },
};

/**
 * WORDS-03: what a refused request says in Chinese, by its stable error code (http.ts HttpError); the
 * English is the refusal's own detail. `request` is said for a code this table does not know.
 */
export const ERROR_LABELS: Record<Lang, Record<string, string>> = {
  zh: {
    request: '请求未能完成',
    bad_request: '请求无效，请检查填写的内容',
    not_found: '找不到该记录（可能已删除，或不在您的管辖范围内）',
    forbidden: '您的角色无权执行此操作',
    conflict: '与现有数据冲突，请刷新后重试',
    invalid_transition: '告警当前的状态不允许此操作',
    not_assignee: '只有接单的响应人员可以执行此操作',
    unauthenticated: '请先登录',
    bad_credentials: '用户名或密码错误',
    too_many_logins: '登录尝试过多，请稍后再试',
    cross_origin: '请求来源不是本系统的控制台，已拒绝',
    nobody: '当前没有可接收的值班人员',
    unavailable: '服务暂时不可用，请稍后重试',
    bad_body: '请求内容不是有效的 JSON',
    too_large: '请求内容过大',
    unsupported_media: '不支持的内容类型',
    too_many_requests: '请求过于频繁，请稍后再试',
  },
  en: {
    request: 'the request could not be completed',
    bad_request: 'invalid request',
    not_found: 'not found',
    forbidden: 'your role may not do this',
    conflict: 'conflicts with existing data; reload and try again',
    invalid_transition: "the alert's state does not allow this",
    not_assignee: 'only the assigned responder can do this',
    unauthenticated: 'log in first',
    bad_credentials: 'wrong username or password',
    too_many_logins: 'too many login attempts; try again later',
    cross_origin: "refused: not from the console's origin",
    nobody: 'nobody on duty to receive it',
    unavailable: 'the service is unavailable for a moment; try again',
    bad_body: 'the request body is not valid JSON',
    too_large: 'the request body is too large',
    unsupported_media: 'unsupported content type',
    too_many_requests: 'too many requests; try again later',
  },
};

/**
 * WORDS-03: a refusal's `text` in both languages: the Chinese from its code (and the alert's state, for a
 * transition the state does not allow), the English its own detail.
 */
export function errorTexts(code: string, message: string, details?: Record<string, unknown>): Texts {
  const zh = ERROR_LABELS.zh[code] ?? ERROR_LABELS.zh.request!;
  const state = details?.state;
  const stateZh =
    code === 'invalid_transition' && typeof state === 'string' && state in STATE_LABELS.zh
      ? `告警当前为「${STATE_LABELS.zh[state as AlertState]}」，不能执行此操作`
      : null;
  return { zh: stateZh ?? zh, en: message || (ERROR_LABELS.en[code] ?? ERROR_LABELS.en.request!) };
}

export const OUTCOME_LABELS: Record<Lang, Record<Outcome, string>> = {
  zh: {
    assisted: '已协助',
    ambulance: '已叫救护车',
    false_alarm: '误报',
    resident_away: '老人不在家',
    device_fault: '设备故障',
    other: '其他',
    auto_cleared: '自动恢复',
  },
  en: {
    assisted: 'Assisted',
    ambulance: 'Ambulance called',
    false_alarm: 'False alarm',
    resident_away: 'Resident away',
    device_fault: 'Device fault',
    other: 'Other',
    auto_cleared: 'Cleared by itself',
  },
};

export const ROLE_LABELS: Record<Lang, Record<string, string>> = {
  zh: {
    grid_worker: '网格员',
    social_worker: '社会组织专员',
    building_leader: '党员楼栋长',
    volunteer: '志愿者',
    property_duty: '物业值班人员',
    dispatcher: '调度员',
    supervisor: '社区负责人',
    admin: '管理员',
  },
  en: {
    grid_worker: 'Grid worker',
    social_worker: 'Social-organisation specialist',
    building_leader: 'Building leader',
    volunteer: 'Volunteer',
    property_duty: 'Property duty',
    dispatcher: 'Dispatcher',
    supervisor: 'Supervisor',
    admin: 'Admin',
  },
};

export const SEVERITY_LABELS: Record<Lang, Record<Severity, string>> = {
  zh: { critical: '紧急', high: '高', medium: '中', technical: '技术' },
  en: { critical: 'Critical', high: 'High', medium: 'Medium', technical: 'Technical' },
};

/** Why a device went offline (DEV-10 presence causes). */
export const CAUSE_LABELS: Record<Lang, Record<string, string>> = {
  zh: {
    connected: '已连接',
    disconnected: '断开连接',
    'will message': '遗嘱消息',
    'keep-alive timeout': '心跳超时',
    'reported offline': '上报离线',
  },
  en: {
    connected: 'connected',
    disconnected: 'disconnected',
    'will message': 'will message',
    'keep-alive timeout': 'keep-alive timeout',
    'reported offline': 'reported offline',
  },
};

/** A room id in the reader's language; text outside the vocabulary is shown as it came. */
export const roomText = (lang: Lang, room: string): string => (isRoom(room) ? ROOM_LABELS[lang][room] : room);

/** "4 h 05 min" (kernel/time.ts formatDuration) in the reader's language: "4小时05分". */
export function durationText(lang: Lang, en: string): string {
  if (lang === 'en') return en;
  return en
    .replace(/^(\d+) h (\d+) min$/, '$1小时$2分')
    .replace(/^(\d+) h$/, '$1小时')
    .replace(/^(\d+) min$/, '$1分钟')
    .replace(/^(\d+) s$/, '$1秒');
}

// ---- Evidence lines (RULE-12)

/**
 * The lines the rules record as an alert's evidence. The rules write the English form (stored as the
 * evidence `summary`); a reader gets it in their language from the same table, so a line is declared once
 * for both. `{room}` is a room id, `{dur}` a duration, `{rule}` a rule id, `{cause}` a presence cause;
 * other slots are shown as they came. The first template that matches a line wins: longer forms first.
 */
const EVIDENCE: readonly Texts[] = [
  { en: 'fall detected in {room} ({pct}%)', zh: '{room}检测到跌倒（{pct}%）' },
  { en: 'fall detected in {room}', zh: '{room}检测到跌倒' },
  { en: 'fall radar reports the fall cleared ({room})', zh: '跌倒雷达报告跌倒已解除（{room}）' },
  { en: 'help button pressed in {room}', zh: '{room}按下了紧急求助按钮' },
  { en: 'resident moved after the fall ({room}, {dur} later)', zh: '跌倒后老人有活动（{room}，{dur}后）' },
  {
    en: 'motion in {room} at {time}, reported {dur} late: the resident moved before this alert',
    zh: '{time} {room}有活动（延迟 {dur} 才收到）：老人在本告警之前已有活动',
  },
  { en: 'battery back to {pct}%', zh: '电量恢复到 {pct}%' },
  { en: 'battery {pct}%', zh: '电量 {pct}%' },
  { en: 'entrance door open since {time}', zh: '入户门自 {time} 起一直开着' },
  {
    en: 'door opened {time}, closed {time2}; no motion inside for {dur}',
    zh: '入户门 {time} 打开、{time2} 关闭；之后 {dur}室内无活动',
  },
  { en: 'door closed {time2}; no motion inside for {dur}', zh: '入户门 {time2} 关闭；之后 {dur}室内无活动' },
  { en: 'last motion in the bathroom at {time}', zh: '最后一次活动在卫生间（{time}）' },
  { en: 'no motion since {time}', zh: '自 {time} 起无活动' },
  { en: 'no motion this morning', zh: '今晨无活动' },
  { en: '{device} back online after {dur}', zh: '{device} 已恢复在线（离线 {dur}）' },
  { en: '{device} offline since {time} ({cause})', zh: '{device} 自 {time} 起离线（{cause}）' },
  {
    en: '{rule} held back: motion sensor {device} offline since {time}',
    zh: '{rule}未告警：人体移动传感器 {device} 自 {time} 起离线',
  },
  {
    en: '{rule} held back: motion sensor {device} battery dead ({pct}%)',
    zh: '{rule}未告警：人体移动传感器 {device} 电池耗尽（{pct}%）',
  },
];

type Slots = Record<string, string>;
const slotText = (lang: Lang, name: string, value: string): string => {
  if (name === 'room') return roomText(lang, value);
  if (name === 'dur') return durationText(lang, value);
  if (name === 'rule') return RULE_LABELS[lang][value as RuleId] ?? value;
  if (name === 'cause') return CAUSE_LABELS[lang][value] ?? value;
  return value;
};
const fill = (lang: Lang, template: string, slots: Slots): string =>
  template.replace(/\{(\w+)\}/g, (_, name: string) => slotText(lang, name, slots[name] ?? ''));

const literal = (s: string) => s.replace(/[.*+?^$()[\]\\|]/g, '\\$&');
const PATTERNS = EVIDENCE.map((t) => {
  const names: string[] = [];
  const source = t.en
    .split(/(\{\w+\})/)
    .map((part) => {
      const slot = /^\{(\w+)\}$/.exec(part);
      if (!slot) return literal(part);
      names.push(slot[1]!);
      return '(.+?)';
    })
    .join('');
  return { re: new RegExp(`^${source}$`), names, text: t };
});

/** An evidence line (as the rules recorded it) in the reader's language; an unknown line as it came. */
export function evidenceText(lang: Lang, summary: string): string {
  if (lang === 'en') return summary;
  for (const p of PATTERNS) {
    const m = p.re.exec(summary);
    if (!m) continue;
    const slots: Slots = {};
    p.names.forEach((n, i) => {
      slots[n] = m[i + 1]!;
    });
    return fill(lang, p.text[lang], slots);
  }
  return summary;
}

/** Every evidence template, for the completeness test. */
export const EVIDENCE_TEMPLATES: readonly Texts[] = EVIDENCE;

// ---- Validation messages (OPS-01 at the edge: parse errors named by field, in the reader's language)

/** Field names as a person reads them, by the last segment of the path. */
export const FIELD_LABELS: Record<Lang, Record<string, string>> = {
  zh: {
    id: '编号',
    name: '姓名',
    phone: '电话',
    community: '社区',
    leaderId: '网格长',
    gridId: '网格',
    gridIds: '网格',
    homeId: '住户',
    householdId: '住户',
    kind: '设备类型',
    room: '房间',
    roles: '角色',
    username: '用户名',
    password: '密码',
    disabled: '停用',
    building: '楼栋',
    unit: '单元',
    address: '地址',
    residents: '居民',
    contacts: '紧急联系人',
    relation: '关系',
    age: '年龄',
    healthNotes: '健康备注',
    accessNotes: '入户信息',
    nightStart: '夜间开始',
    nightEnd: '夜间结束',
    wakeTime: '通常起床时间',
    awayUntil: '外出至',
    awayReason: '外出原因',
    shift: '班次',
    weekdays: '星期',
    staffIds: '人员',
    staffId: '人员',
    replacementId: '顶班人员',
    date: '日期',
    outcome: '处置结果',
    note: '上门记录',
    text: '备注',
    reason: '原因',
    to: '致电对象',
    result: '通话结果',
    body: '请求内容',
    from: '开始',
    until: '结束',
    acceptWithinMin: '接单时限',
    onSiteWithinMin: '上门时限',
    steps: '步骤',
    afterMin: '分钟',
    repeat: '重复通知',
    everyMin: '间隔分钟',
    times: '次数',
  },
  en: {
    id: 'id',
    name: 'name',
    phone: 'phone',
    community: 'community',
    leaderId: 'grid leader',
    gridId: 'grid',
    gridIds: 'grids',
    homeId: 'household',
    householdId: 'household',
    kind: 'device kind',
    room: 'room',
    roles: 'roles',
    username: 'username',
    password: 'password',
    disabled: 'disabled',
    building: 'building',
    unit: 'unit',
    address: 'address',
    residents: 'residents',
    contacts: 'emergency contacts',
    relation: 'relation',
    age: 'age',
    healthNotes: 'health notes',
    accessNotes: 'access notes',
    nightStart: 'night start',
    nightEnd: 'night end',
    wakeTime: 'usual wake time',
    awayUntil: 'away until',
    awayReason: 'away reason',
    shift: 'shift',
    weekdays: 'weekdays',
    staffIds: 'staff',
    staffId: 'staff member',
    replacementId: 'stand-in',
    date: 'date',
    outcome: 'outcome',
    note: 'visit note',
    text: 'note',
    reason: 'reason',
    to: 'called',
    result: 'call result',
    body: 'request body',
    from: 'from',
    until: 'until',
    acceptWithinMin: 'accepted within',
    onSiteWithinMin: 'on site within',
    steps: 'step',
    afterMin: 'minute',
    repeat: 'repeat',
    everyMin: 'every (min)',
    times: 'times',
  },
};

/** A field path ("residents.0.phone") as a person reads it: "居民 1 · 电话", "residents 1 · phone". */
export function fieldText(lang: Lang, path: readonly PropertyKey[]): string {
  if (path.length === 0) return lang === 'zh' ? '整行' : 'the row';
  return path
    .map((p) => (typeof p === 'number' ? String(p + 1) : (FIELD_LABELS[lang][String(p)] ?? String(p))))
    .join(' · ')
    .replace(/ · (\d+)/g, ' $1');
}

/** What a zod issue says, reduced to what the messages need (zod 4's issue shape). */
export interface IssueFacts {
  code: string;
  path: readonly PropertyKey[];
  message: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  origin?: string;
  input?: unknown;
  values?: readonly unknown[];
  keys?: readonly string[];
  format?: string;
  expected?: string;
  /** A custom issue may carry its own sentence in both languages as `params.texts`. */
  params?: { texts?: Texts };
}

const sizeWord = (lang: Lang, origin: string | undefined): string =>
  origin === 'string'
    ? lang === 'zh'
      ? '个字符'
      : ' characters'
    : origin === 'array'
      ? lang === 'zh'
        ? '项'
        : ' items'
      : '';

/**
 * One validation problem in both languages, naming the field: a route's 400 and an import's row problem
 * say it the same way. A `custom` issue carries its own sentence (its message), shown in both.
 */
export function issueTexts(issue: IssueFacts): Texts {
  const say = (lang: Lang): string => {
    const zh = lang === 'zh';
    const field = fieldText(lang, issue.path);
    const n = (v: number | bigint | undefined) => String(v ?? '');
    switch (issue.code) {
      case 'invalid_type':
        return /received undefined/.test(issue.message)
          ? zh
            ? `「${field}」必填`
            : `${field}: required`
          : zh
            ? `「${field}」格式不对（应为${issue.expected === 'number' ? '数字' : issue.expected === 'array' ? '列表' : issue.expected === 'boolean' ? '是/否' : '文字'}）`
            : `${field}: expected ${issue.expected ?? 'another type'}`;
      case 'too_small':
        if (issue.origin === 'string' && Number(issue.minimum) === 1)
          return zh ? `「${field}」不能为空` : `${field}: must not be empty`;
        return zh
          ? `「${field}」至少 ${n(issue.minimum)}${sizeWord(lang, issue.origin)}`
          : `${field}: at least ${n(issue.minimum)}${sizeWord(lang, issue.origin)}`;
      case 'too_big':
        return zh
          ? `「${field}」最多 ${n(issue.maximum)}${sizeWord(lang, issue.origin)}`
          : `${field}: at most ${n(issue.maximum)}${sizeWord(lang, issue.origin)}`;
      case 'invalid_value': {
        const values = (issue.values ?? []).map(String).join(zh ? '、' : ', ');
        return zh ? `「${field}」应为以下之一：${values}` : `${field}: must be one of ${values}`;
      }
      case 'invalid_format':
        return zh ? `「${field}」格式不对` : `${field}: not in the expected format`;
      case 'unrecognized_keys': {
        const keys = (issue.keys ?? []).join(zh ? '、' : ', ');
        return zh ? `「${field}」含有未知字段：${keys}` : `${field}: unknown field(s) ${keys}`;
      }
      default: {
        const own = issue.params?.texts?.[lang];
        if (own) return zh ? `「${field}」${own}` : `${field}: ${own}`;
        return zh ? `「${field}」：${issue.message}` : `${field}: ${issue.message}`;
      }
    }
  };
  return { zh: say('zh'), en: say('en') };
}

/** What an import refuses in a row beyond its schema (DATA-05): a missing reference, a clash. */
export type RowProblem =
  | { kind: 'no_grid' | 'no_staff' | 'no_household'; id: string }
  | { kind: 'twice_in_file'; id: string }
  | { kind: 'username_taken'; username: string }
  | { kind: 'password_required' }
  | { kind: 'retired'; id: string }
  | { kind: 'device_moved'; id: string; was: { kind: string; homeId: string } };

export function rowProblemTexts(p: RowProblem): Texts {
  switch (p.kind) {
    case 'no_grid':
      return { zh: `没有网格 ${p.id}`, en: `no grid ${p.id}` };
    case 'no_staff':
      return { zh: `没有人员 ${p.id}`, en: `no staff ${p.id}` };
    case 'no_household':
      return { zh: `没有住户 ${p.id}`, en: `no household ${p.id}` };
    case 'twice_in_file':
      return { zh: `${p.id} 在本文件中出现了两次`, en: `${p.id} appears twice in this file` };
    case 'username_taken':
      return { zh: `用户名 ${p.username} 已被使用`, en: `username ${p.username} is taken` };
    case 'password_required':
      return { zh: '新人员必须设置密码', en: 'required for a new staff member' };
    case 'retired':
      return { zh: `${p.id} 已归档，编号不再使用`, en: `${p.id} was retired; its id is not reused` };
    case 'device_moved': {
      const kind = KIND_LABELS.zh[p.was.kind as keyof (typeof KIND_LABELS)['zh']] ?? p.was.kind;
      return {
        zh: `设备 ${p.id} 已登记为住户 ${p.was.homeId} 的${kind}，不能改到其他住户或类型`,
        en: `device ${p.id} exists as ${p.was.kind} of household ${p.was.homeId}`,
      };
    }
  }
}

/** A password refused by passwords.ts (its English sentence), in both languages. */
export function passwordTexts(en: string): Texts {
  const short = /^must be at least (\d+) characters( for an admin)?$/.exec(en);
  if (short) return { en, zh: `至少需要 ${short[1]} 个字符${short[2] ? '（管理员账号）' : ''}` };
  if (/commonest passwords/.test(en)) return { en, zh: '是最常见的密码之一，请换一个' };
  return { en, zh: en };
}

/** A room typed outside the vocabulary (DEV-09), as an import or a form refuses it. */
export function unknownRoomTexts(typed: string): Texts {
  const list = (lang: Lang) =>
    ROOMS.map((r) => (lang === 'zh' ? ROOM_LABELS.zh[r] : `${r} (${ROOM_LABELS.zh[r]})`)).join(
      lang === 'zh' ? '、' : ', ',
    );
  return {
    zh: `“${typed}”不是已知的房间，请从以下选择：${list('zh')}`,
    en: `"${typed}" is not a room we know; use one of ${list('en')}`,
  };
}

/** A roster override that lacks the person its kind needs (SPEC §4: leave and swap name who is off, cover and swap who stands in). */
export function overrideNeedsTexts(
  kind: 'leave' | 'cover' | 'swap',
  field: 'staffId' | 'replacementId',
): Texts {
  const zhKind = { leave: '请假', cover: '代班', swap: '换班' }[kind];
  return field === 'staffId'
    ? { zh: `${zhKind}须填写休息的人员`, en: `required for ${kind}: who is off` }
    : { zh: `${zhKind}须填写顶班的人员`, en: `required for ${kind}: who stands in` };
}

/**
 * What a share on the dispatch screen counts (CONSOLE-01): "29 / 29 due · 1 pending". The share is over
 * the alerts whose mark has come (met or missed); those still inside it are said apart, not hidden.
 */
export function slaShareDetail(
  lang: Lang,
  mark: 'accept' | 'onSite',
  today: {
    raised: number;
    acceptedWithin3: number;
    acceptDecided: number;
    onSiteWithin15: number;
    onSiteDecided: number;
  },
): string {
  const [within, decided, minutes] =
    mark === 'accept'
      ? [today.acceptedWithin3, today.acceptDecided, 3]
      : [today.onSiteWithin15, today.onSiteDecided, 15];
  const pending = Math.max(0, today.raised - decided);
  if (lang === 'zh') return `${within} / ${decided} 起${pending ? ` · ${pending} 起未满${minutes}分钟` : ''}`;
  return `${within} / ${decided} due${pending ? ` · ${pending} pending` : ''}`;
}

/** The audit log's actions in words (DATA-04, WORDS-01): the record's kind, then what was done to it. */
export const AUDIT_KIND_LABELS: Record<Lang, Record<string, string>> = {
  zh: {
    alert: '告警',
    household: '住户',
    grid: '网格',
    staff: '人员',
    device: '设备',
    roster: '排班',
    registry: '登记数据',
    push: '锁屏通知',
    escalation_policy: '升级策略',
    cross_community: '跨社区',
  },
  en: {
    alert: 'Alert',
    household: 'Household',
    grid: 'Grid',
    staff: 'Staff',
    device: 'Device',
    roster: 'Roster',
    registry: 'Registry',
    push: 'Push',
    escalation_policy: 'Escalation policy',
    cross_community: 'Cross-community',
  },
};

export const AUDIT_VERB_LABELS: Record<Lang, Record<string, string>> = {
  zh: {
    login: '登录',
    logout: '退出',
    upsert: '保存',
    create: '新建',
    update: '修改',
    retire: '归档',
    provision: '登记',
    room: '更改房间',
    rotate_secret: '更换密钥',
    disable: '停用',
    enable: '启用',
    read_access_notes: '查看入户须知',
    away: '设为外出',
    back: '已回家',
    family_updates: '家属通知设置',
    set: '设置',
    override: '排班调整',
    override_delete: '删除排班调整',
    password_reset: '重置密码',
    report: '来电登记',
    resend: '重发通知',
    subscribe: '订阅',
    unsubscribe: '退订',
    export: '导出',
    import: '导入',
    assign: '指派',
    reassign: '改派',
    accept: '接单',
    en_route: '出发',
    on_site: '到达',
    resolve: '处置完成',
    cancel: '取消',
    note: '备注',
    call: '通话记录',
    decline: '无法前往',
  },
  en: {
    login: 'logged in',
    logout: 'logged out',
    upsert: 'saved',
    create: 'created',
    update: 'changed',
    retire: 'retired',
    provision: 'provisioned',
    room: 'room changed',
    rotate_secret: 'secret rotated',
    disable: 'disabled',
    enable: 'enabled',
    read_access_notes: 'access notes read',
    away: 'marked away',
    back: 'back home',
    family_updates: 'family updates set',
    set: 'set',
    override: 'roster override',
    override_delete: 'roster override deleted',
    password_reset: 'password reset',
    report: 'phoned-in report',
    resend: 'notice resent',
    subscribe: 'subscribed',
    unsubscribe: 'unsubscribed',
    export: 'exported',
    import: 'imported',
    assign: 'assigned',
    reassign: 'reassigned',
    accept: 'accepted',
    en_route: 'en route',
    on_site: 'on site',
    resolve: 'resolved',
    cancel: 'cancelled',
    note: 'note',
    call: 'call recorded',
    decline: "can't go",
  },
};

/** "设备 · 更换密钥" / "Device · secret rotated"; an action outside the tables shows as recorded. */
export function auditActionText(lang: Lang, action: string): string {
  const dot = action.lastIndexOf('.');
  const kind = dot > 0 ? action.slice(0, dot) : '';
  const verb = action.slice(dot + 1).replace(/-/g, '_');
  const v = AUDIT_VERB_LABELS[lang][verb];
  if (!v) return action;
  if (!kind) return v;
  const k = AUDIT_KIND_LABELS[lang][kind.split('.').pop()!];
  return k ? `${k} · ${v}` : action;
}
