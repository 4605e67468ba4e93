/**
 * The rules engine (SPEC §5): turns logged device events into triggers. Pure: it takes the home's state and
 * one event and returns the new state and the triggers; the pipeline persists and raises. Rules run on
 * event time, so replaying the same log yields the same triggers.
 */
import { DateTime } from 'luxon';
import type { LoggedEvent } from '../../gateway/ports.ts';
import type { DeviceKind } from '../../gateway/protocol.ts';
import { formatDuration, ms } from '../../kernel/time.ts';
import type { Evidence, Explanation, RuleId } from '../alerts/model.ts';

export interface HomeContext {
  householdId: string;
  /** The community's IANA time zone. */
  zone: string;
  devices: ReadonlyMap<string, { kind: DeviceKind; room: string }>;
}

export interface HomeState {
  lastMotionAt: number | null;
  lastMotionRoom: string | null;
  lastFallAt: number | null;
  batteryLow: Record<string, boolean>;
}

export const emptyHomeState = (): HomeState => ({
  lastMotionAt: null,
  lastMotionRoom: null,
  lastFallAt: null,
  batteryLow: {},
});

export interface Trigger {
  rule: RuleId;
  householdId: string;
  deviceId: string | null;
  at: number;
  evidence: Evidence;
  explanation: Explanation;
  /** Evidence for an open alert only: never raises a new one (e.g. "resident moved after the fall"). */
  attachOnly?: boolean;
}

/** A technical condition ended (device back, battery replaced): clears the open technical alert. */
export interface Clearance {
  rule: RuleId;
  householdId: string;
  deviceId: string;
  at: number;
  evidence: Evidence;
}

export interface Evaluation {
  state: HomeState;
  triggers: Trigger[];
  clearances: Clearance[];
}

export const LOW_BATTERY_PERCENT = 15;

export function evaluate(state: HomeState, logged: LoggedEvent, ctx: HomeContext): Evaluation {
  const ev = logged.event;
  const device = ctx.devices.get(logged.deviceId);
  const room = device?.room ?? '?';
  const triggers: Trigger[] = [];
  const clearances: Clearance[] = [];
  const next: HomeState = { ...state, batteryLow: { ...state.batteryLow } };
  const evidence = (summary: string): Evidence => ({
    seq: logged.seq,
    deviceId: logged.deviceId,
    type: ev.type,
    at: ev.ts,
    summary,
  });

  switch (ev.type) {
    case 'fall': {
      if (ev.state === 'detected') {
        next.lastFallAt = ev.ts;
        const where = ev.room ?? room;
        const conf = ev.confidence === undefined ? '' : ` (${Math.round(ev.confidence * 100)}%)`;
        triggers.push({
          rule: 'FALL',
          householdId: ctx.householdId,
          deviceId: logged.deviceId,
          at: ev.ts,
          evidence: evidence(`fall detected in ${where}${conf}`),
          explanation: {
            zh: `${localHhMm(ev.ts, ctx.zone)} 跌倒雷达在${roomZh(where)}检测到跌倒${conf}`,
            en: `fall radar detected a fall in ${where} at ${localHhMm(ev.ts, ctx.zone)}${conf}`,
          },
        });
      }
      break;
    }
    case 'sos':
      triggers.push({
        rule: 'SOS',
        householdId: ctx.householdId,
        deviceId: logged.deviceId,
        at: ev.ts,
        evidence: evidence(`help button pressed in ${room}`),
        explanation: {
          zh: `${localHhMm(ev.ts, ctx.zone)} 按下了求助按钮（${roomZh(room)}）`,
          en: `help button pressed in ${room} at ${localHhMm(ev.ts, ctx.zone)}`,
        },
      });
      break;
    case 'motion':
      if (ev.state === 'active') {
        if (next.lastFallAt !== null && ev.ts > next.lastFallAt) {
          // Recorded on the open FALL alert as evidence; it never closes it (SPEC §5 "Clearing").
          triggers.push({
            rule: 'FALL',
            householdId: ctx.householdId,
            deviceId: logged.deviceId,
            at: ev.ts,
            evidence: evidence(
              `resident moved after the fall (${ev.room}, ${formatDuration(ms(ev.ts - next.lastFallAt))} later)`,
            ),
            explanation: { zh: '', en: '' },
            attachOnly: true,
          });
          next.lastFallAt = null;
        }
        next.lastMotionAt = ev.ts;
        next.lastMotionRoom = ev.room;
      }
      break;
    case 'heartbeat':
      if (ev.battery !== undefined) {
        const low = ev.battery <= LOW_BATTERY_PERCENT;
        const was = next.batteryLow[logged.deviceId] ?? false;
        if (low && !was) {
          triggers.push({
            rule: 'LOW_BATTERY',
            householdId: ctx.householdId,
            deviceId: logged.deviceId,
            at: ev.ts,
            evidence: evidence(`battery ${ev.battery}%`),
            explanation: {
              zh: `设备 ${logged.deviceId} 电量 ${ev.battery}%（阈值 ${LOW_BATTERY_PERCENT}%）`,
              en: `device ${logged.deviceId} battery at ${ev.battery}% (threshold ${LOW_BATTERY_PERCENT}%)`,
            },
          });
        } else if (!low && was) {
          clearances.push({
            rule: 'LOW_BATTERY',
            householdId: ctx.householdId,
            deviceId: logged.deviceId,
            at: ev.ts,
            evidence: evidence(`battery back to ${ev.battery}%`),
          });
        }
        next.batteryLow[logged.deviceId] = low;
      }
      break;
    case 'door':
      break;
    case 'presence':
      break;
  }
  return { state: next, triggers, clearances };
}

const ROOM_ZH: Record<string, string> = {
  living: '客厅',
  bedroom: '卧室',
  bathroom: '卫生间',
  kitchen: '厨房',
  entrance: '门口',
  balcony: '阳台',
};
/** Room names in zh-CN explanations (rooms are registered in English ids). */
export const roomZh = (room: string): string => ROOM_ZH[room] ?? room;

/** Explanations state times of day in the community's time zone, never the host's. */
export function localHhMm(ts: number, zone: string): string {
  return DateTime.fromMillis(ts, { zone }).toFormat('HH:mm');
}
