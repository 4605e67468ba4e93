/**
 * The words of the rules (RULE-12): the sentence each alert carries to say why it was raised, in English
 * and zh-CN, and the one-line evidence summaries. The handlers in `kinds/` decide; this module only words
 * what they decided, in the shared vocabulary (rule names as the notices say them, rooms as DEV-09 names
 * them). Times of day are in the community's zone, never the host's (CONSOLE-03).
 */
import type { DeviceKind, PresenceEvent } from '../../gateway/protocol.ts';
import { type DurationWords, formatDuration } from '../../kernel/time.ts';
import type { RuleId } from '../alerts/model.ts';
import { isRoom, ROOM_LABELS } from '../rooms.ts';
import { EVENT_LABELS, KIND_LABELS, RULE_LABELS } from '../words.ts';
import { minutesHhmm } from './localtime.ts';

/** One thing said in both languages. */
export interface Said {
  en: string;
  zh: string;
}

/** A time of day in the community's zone ("09:12"). */
export type Hhmm = (ts: number) => string;

const ZH_WORDS: DurationWords = {
  s: (n) => `${n}秒`,
  min: (n) => `${n}分钟`,
  h: (n) => `${n}小时`,
  hMin: (h, mm) => `${h}小时${mm}分`,
};

/** "4 h 05 min", "40 min": durations in English explanations. */
export const dur = (d: number): string => formatDuration(d);
/** "4小时05分", "40分钟", "30秒": durations in zh-CN explanations. */
export const durZh = (d: number): string => formatDuration(d, ZH_WORDS);

/** Room names in zh-CN explanations (devices are registered in the DEV-09 vocabulary's ids). */
export const roomZh = (room: string): string => (isRoom(room) ? ROOM_LABELS.zh[room] : room);

const KIND_EN: Record<DeviceKind, string> = {
  fall: 'fall radar',
  door: 'door contact',
  motion: 'motion sensor',
  button: 'help button',
};
/** zh-CN names of kinds and events: the one vocabulary (words.ts, WORDS-01). */
const KIND_ZH: Record<DeviceKind, string> = KIND_LABELS.zh;

const CAUSE: Record<PresenceEvent['cause'], Said> = {
  connect: { en: 'connected', zh: '已连接' },
  disconnect: { en: 'disconnected', zh: '断开连接' },
  will: { en: 'will message', zh: '遗嘱消息' },
  keepalive: { en: 'keep-alive timeout', zh: '心跳超时' },
  status: { en: 'reported offline', zh: '上报离线' },
};

const EVENT_ZH: Record<string, string> = EVENT_LABELS.zh;

/** A late event's alert says when it really happened and how late it came; nothing for a timely one. */
export function lateWords(ts: number, heard: number, late: boolean, hh: Hhmm): Said {
  return late
    ? {
        en: `; reported ${dur(heard - ts)} late, at ${hh(heard)}`,
        zh: `（${hh(heard)} 才收到，延迟 ${durZh(heard - ts)}）`,
      }
    : { en: '', zh: '' };
}

// ---- DEVICE_OFFLINE (RULE-08, RULE-10)

/** "fall radar r1 (bedroom) offline since 09:12 (will message)". */
export function deviceOffline(
  id: string,
  dev: { kind: DeviceKind; room: string } | undefined,
  why: Said,
): { explanation: Said; summary: string } {
  const what = dev ? `${KIND_EN[dev.kind]} ${id} (${dev.room})` : `device ${id}`;
  const whatZh = dev ? `${roomZh(dev.room)}${KIND_ZH[dev.kind]} ${id}` : `设备 ${id}`;
  return { explanation: { en: `${what} ${why.en}`, zh: `${whatZh} ${why.zh}` }, summary: `${id} ${why.en}` };
}

export const disconnected = (since: string, cause: PresenceEvent['cause']): Said => ({
  en: `offline since ${since} (${CAUSE[cause].en})`,
  zh: `自 ${since} 起离线（${CAUSE[cause].zh}）`,
});

export function silentSince(
  since: number,
  at: number,
  silentMs: number,
  neverHeard: boolean,
  hh: Hhmm,
): Said {
  const words = neverHeard
    ? { en: 'never heard from, the home live since', zh: '起该户已在线，此设备从未上线' }
    : { en: 'silent since', zh: '起无任何消息' };
  return {
    en: `${words.en} ${hh(since)} (${dur(at - since)}; threshold ${dur(silentMs)}, 3 heartbeat periods)`,
    zh: `自 ${hh(since)} ${words.zh}（${durZh(at - since)}；阈值 ${durZh(silentMs)}，即 3 个心跳周期）`,
  };
}

export const backOnline = (id: string, offlineFor: number): string =>
  `${id} back online after ${dur(offlineFor)}`;

/** An activity rule held back because the motion sensor that would see cannot (RULE-10). */
export function heldBack(
  rule: RuleId,
  what: Said,
  sensor: { id: string; room: string; offlineSince: number | null; battery: number | null },
  hh: Hhmm,
): { explanation: Said; summary: string } {
  const { id, room } = sensor;
  const why =
    sensor.offlineSince !== null
      ? { en: `offline since ${hh(sensor.offlineSince)}`, zh: `自 ${hh(sensor.offlineSince)} 起离线` }
      : { en: `battery dead (${sensor.battery}%)`, zh: `电池耗尽（${sensor.battery}%）` };
  return {
    summary: `${rule} held back: motion sensor ${id} ${why.en}`,
    explanation: {
      en: `${rule} not raised: ${what.en}, but motion sensor ${id} (${room}) is ${why.en}; a silent sensor is not a silent household`,
      zh: `${RULE_LABELS.zh[rule]}未告警：${what.zh}，但${roomZh(room)}人体移动传感器 ${id} ${why.zh}；需检修设备`,
    },
  };
}

// ---- FALL, SOS (RULE-01, RULE-02)

export const fallDetected = (where: string, conf: string, at: string, late: Said): Said => ({
  en: `fall radar detected a fall in ${where} at ${at}${conf}${late.en}`,
  zh: `${at} 跌倒雷达在${roomZh(where)}检测到跌倒${conf}${late.zh}`,
});

export const helpPressed = (room: string, at: string, late: Said): Said => ({
  en: `help button pressed in ${room} at ${at}${late.en}`,
  zh: `${at} 按下了紧急求助按钮（${roomZh(room)}）${late.zh}`,
});

/** Late motion from inside a quiet period a silence alert was raised for: the resident moved before it. */
export const movedBeforeAlert = (room: string, at: string, lateBy: number): string =>
  `motion in ${room} at ${at}, reported ${dur(lateBy)} late: the resident moved before this alert`;

// ---- NIGHT_EXIT (RULE-03)

export function nightExit(
  exit: { openedAt: number | null; closedAt: number },
  night: { start: number; end: number },
  thresholdMs: number,
  hh: Hhmm,
): { what: Said; explanation: Said; summary: string } {
  const mins = dur(thresholdMs);
  const window = `${minutesHhmm(night.start)}–${minutesHhmm(night.end)}`;
  const what = {
    en: `the entrance door closed at ${hh(exit.closedAt)} in the night window (${window}) and nothing moved inside for ${mins}`,
    zh: `夜间（${window}）${hh(exit.closedAt)} 入户门开关后 ${durZh(thresholdMs)}内室内无活动`,
  };
  return {
    what,
    summary: `door ${exit.openedAt === null ? '' : `opened ${hh(exit.openedAt)}, `}closed ${hh(exit.closedAt)}; no motion inside for ${mins}`,
    explanation: {
      en: `${what.en}; the resident may have left (threshold ${mins})`,
      zh: `${what.zh}，老人可能已外出（阈值 ${durZh(thresholdMs)}）`,
    },
  };
}

// ---- DOOR_LEFT_OPEN (RULE-07)

export const doorOpenSince = (since: number, at: number, thresholdMs: number, hh: Hhmm): Said => ({
  en: `entrance door open since ${hh(since)} (${dur(at - since)}); threshold ${dur(thresholdMs)}`,
  zh: `入户门自 ${hh(since)} 起一直开着（${durZh(at - since)}）；阈值 ${durZh(thresholdMs)}`,
});

// ---- BATHROOM_DWELL (RULE-06)

export const bathroomQuiet = (last: number, at: number, hh: Hhmm): Said => ({
  en: `last motion in the bathroom at ${hh(last)}, nothing moved anywhere for ${dur(at - last)}`,
  zh: `最后一次活动在卫生间（${hh(last)}），此后 ${durZh(at - last)}各处均无活动`,
});

/** "…; threshold 40 min": the rule's sentence after what was seen. */
export const withThreshold = (what: Said, thresholdMs: number): Said => ({
  en: `${what.en}; threshold ${dur(thresholdMs)}`,
  zh: `${what.zh}；阈值 ${durZh(thresholdMs)}`,
});

// ---- INACTIVITY (RULE-05)

export const noMotionSince = (last: number, at: number, hh: Hhmm): Said => ({
  en: `no motion since ${hh(last)} (${dur(at - last)})`,
  zh: `自 ${hh(last)} 起无活动（${durZh(at - last)}）`,
});

/** The threshold, and the learned habit it came from when the household opted into its baseline. */
export function inactivityThreshold(what: Said, thresholdMs: number, usualMinutes: number | undefined): Said {
  const t = withThreshold(what, thresholdMs);
  if (usualMinutes === undefined) return t;
  return {
    en: `${t.en} (learned: usually at most ${dur(usualMinutes * 60_000)} quiet at this hour)`,
    zh: `${t.zh}（按习惯：此时段通常最长 ${durZh(usualMinutes * 60_000)}无活动）`,
  };
}

// ---- NO_MORNING_ACTIVITY (RULE-04)

export function morning(
  at: number,
  last: number | null,
  rule: { learnedUpBy: number } | { wake: number; graceMs: number },
  hh: Hhmm,
): { what: Said; explanation: Said } {
  const lastText =
    last === null
      ? { en: 'no motion recorded yet', zh: '尚无活动记录' }
      : {
          en: `last motion at ${hh(last)} (${dur(at - last)} ago)`,
          zh: `最后一次活动 ${hh(last)}（${durZh(at - last)}前）`,
        };
  const what =
    'learnedUpBy' in rule
      ? {
          en: `usually up by ${minutesHhmm(rule.learnedUpBy)}; nothing yet at ${hh(at)}`,
          zh: `平时 ${minutesHhmm(rule.learnedUpBy)} 前起床；${hh(at)} 仍无活动`,
        }
      : {
          en: `no motion by ${hh(at)} (wake time ${minutesHhmm(rule.wake)} + ${dur(rule.graceMs)})`,
          zh: `${hh(at)} 前无起床活动（起床时间 ${minutesHhmm(rule.wake)} + ${durZh(rule.graceMs)}）`,
        };
  return { what, explanation: { en: `${what.en}; ${lastText.en}`, zh: `${what.zh}；${lastText.zh}` } };
}

// ---- LOW_BATTERY (RULE-09)

export const batteryLow = (id: string, battery: number, threshold: number): Said => ({
  en: `device ${id} battery at ${battery}% (threshold ${threshold}%)`,
  zh: `设备 ${id} 电量 ${battery}%（阈值 ${threshold}%）`,
});

// ---- HOME_UNWATCHED (RULE-15)

export function unwatched(
  item: { deviceId: string; type: string } | null,
  reason: string,
  hhmm: string,
): { explanation: Said; summary: string } {
  const what = item
    ? {
        en: `a ${item.type} event from device ${item.deviceId}`,
        zh: `设备 ${item.deviceId} 的${EVENT_ZH[item.type] ?? item.type}事件`,
      }
    : { en: 'its silence deadlines', zh: '无活动计时' };
  return {
    summary: `${what.en} could not be processed (${reason})`,
    explanation: {
      en: `this home is not being watched: at ${hhmm} the rules could not process ${what.en} (${reason}), so alerts of this home may be missing; phone the resident now and have the service checked`,
      zh: `此户当前未被看护：${hhmm} 规则无法处理${what.zh}（${reason}），该户的告警可能缺失；请立即电话联系老人，并通知技术人员检修`,
    },
  };
}
