/** zh-CN by default, English available (SPEC §8, §13). */
import type { AlertState, RuleId, Severity } from '../../dispatcher/api/types.ts';

export type Lang = 'zh' | 'en';

const zh = {
  title: '365 云守护 · 社区调度室',
  tagline: '一屏调度、一户一档',
  login: '登录',
  logout: '退出',
  username: '用户名',
  password: '密码',
  badLogin: '用户名或密码错误',
  queue: '告警队列',
  onDuty: '当前值班',
  noAlerts: '暂无未处理告警',
  disconnected: '实时连接已断开，正在重连…',
  reconnected: '已重新连接',
  severity: '级别',
  rule: '类型',
  household: '住户',
  grid: '网格',
  state: '状态',
  assignee: '负责人',
  countdown: '15分钟内上门',
  overdue: '已超时',
  myAlerts: '我的告警',
  accept: '接单',
  enRoute: '出发',
  onSite: '到达',
  resolve: '处置完成',
  outcome: '处置结果',
  note: '上门记录',
  nobody: '无人值班',
  day: '日间',
  night: '夜间',
  openAlerts: '未处理',
  breaches: '超时',
  enableSound: '开启提示音',
  soundOn: '提示音已开启',
  lang: 'English',
  address: '地址',
};
export type Key = keyof typeof zh;

const en: Record<Key, string> = {
  title: 'Guardian 365 · Dispatch room',
  tagline: 'One screen to dispatch, one file per household',
  login: 'Log in',
  logout: 'Log out',
  username: 'Username',
  password: 'Password',
  badLogin: 'Wrong username or password',
  queue: 'Alert queue',
  onDuty: 'On duty now',
  noAlerts: 'No open alerts',
  disconnected: 'Live connection lost, reconnecting…',
  reconnected: 'Reconnected',
  severity: 'Severity',
  rule: 'Rule',
  household: 'Household',
  grid: 'Grid',
  state: 'State',
  assignee: 'Assignee',
  countdown: 'At the door within 15 min',
  overdue: 'overdue',
  myAlerts: 'My alerts',
  accept: 'Accept',
  enRoute: 'En route',
  onSite: 'On site',
  resolve: 'Resolve',
  outcome: 'Outcome',
  note: 'Visit note',
  nobody: 'nobody on duty',
  day: 'Day',
  night: 'Night',
  openAlerts: 'Open',
  breaches: 'Breaches',
  enableSound: 'Enable sound',
  soundOn: 'Sound on',
  lang: '中文',
  address: 'Address',
};

export const RULE_NAMES: Record<Lang, Record<RuleId, string>> = {
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
  },
};

export const STATE_NAMES: Record<Lang, Record<AlertState, string>> = {
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

export const SEVERITY_NAMES: Record<Lang, Record<Severity, string>> = {
  zh: { critical: '紧急', high: '高', medium: '中', technical: '技术' },
  en: { critical: 'Critical', high: 'High', medium: 'Medium', technical: 'Technical' },
};

const dicts: Record<Lang, Record<Key, string>> = { zh, en };

export function getLang(): Lang {
  return localStorage.getItem('g365.lang') === 'en' ? 'en' : 'zh';
}

export function setLang(l: Lang): void {
  localStorage.setItem('g365.lang', l);
}

export const t = (lang: Lang, key: Key): string => dicts[lang][key];
