/**
 * Rule thresholds (SPEC §5 defaults), overridable by the deployment (`RULES` in the environment or the
 * config file) and per household (the routine profile of the household file, SPEC §4). Pure: the
 * pipeline resolves one RuleSettings per household and hands it to the engine.
 */
import { z } from 'zod';
import { RULES, type RuleId } from '../alerts/model.ts';
import type { Household } from '../registry.ts';
import { hhmmMinutes, type NightWindow } from './localtime.ts';

const MIN = 60_000;

/**
 * Default thresholds by rule, in minutes (LOW_BATTERY in percent). NO_MORNING_ACTIVITY is the grace after
 * the wake time; DEVICE_OFFLINE is the silence after which a device counts as offline (3 heartbeat periods
 * of 5 min, SPEC §3/§5).
 */
export const DEFAULT_THRESHOLDS: Record<RuleId, number> = {
  FALL: 0,
  SOS: 0,
  NIGHT_EXIT: 10,
  NO_MORNING_ACTIVITY: 90,
  INACTIVITY: 240,
  BATHROOM_DWELL: 40,
  DOOR_LEFT_OPEN: 30,
  DEVICE_OFFLINE: 15,
  LOW_BATTERY: 15,
  HOME_UNWATCHED: 0,
  PHONE_REPORT: 0,
};

/** SPEC §5 presence: the entrance door closed and nothing moved inside for 10 min → away. */
export const AWAY_AFTER_MIN = 10;
/** A battery at or below this is as good as none: the sensor is not trusted to see motion (SPEC §5). */
export const DEAD_BATTERY_PERCENT = 5;
/** LOW_BATTERY clears only this far above its threshold, so a reading that wobbles raises once. */
export const BATTERY_HYSTERESIS = 10;

/** The deployment's `RULES` section: JSON in the environment variable or an object in the config file. */
export const rulesConfigSchema = z.strictObject({
  thresholds: z.partialRecord(z.enum(RULES), z.number().positive().max(10_080)).default({}),
});
export type RulesConfig = z.output<typeof rulesConfigSchema>;

/** Accepts the env variable's JSON text or the config file's object. */
export const rulesConfigInput = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}, rulesConfigSchema);

export interface RuleSettings {
  night: NightWindow;
  /** Usual wake time, local minutes. */
  wake: number;
  nightExitMs: number;
  morningGraceMs: number;
  inactivityMs: number;
  bathroomMs: number;
  doorOpenMs: number;
  silentMs: number;
  awayAfterMs: number;
  lowBatteryPercent: number;
  /** The household's `away` status (hospital, with family) suspends the activity rules until then. */
  awayUntil: number | null;
  /** Learned routine baselines apply (opt-in per household, RULE-14). */
  baseline: boolean;
}

export function resolveSettings(
  household: Pick<Household, 'routine' | 'awayUntil'> | null,
  config: Partial<RulesConfig> = {},
): RuleSettings {
  const thresholds: Record<string, number> = {
    ...DEFAULT_THRESHOLDS,
    ...(config.thresholds ?? {}),
    ...validOverrides(household?.routine.thresholds ?? {}),
  };
  const t = (rule: RuleId) => thresholds[rule]! * MIN;
  // The night window and wake time are the household's own (SPEC §4 defaults 22:00–06:00, 07:30).
  const routine = household?.routine;
  return {
    night: {
      start: hhmmMinutes(routine?.nightStart ?? '22:00'),
      end: hhmmMinutes(routine?.nightEnd ?? '06:00'),
    },
    wake: hhmmMinutes(routine?.wakeTime ?? '07:30'),
    nightExitMs: t('NIGHT_EXIT'),
    morningGraceMs: t('NO_MORNING_ACTIVITY'),
    inactivityMs: t('INACTIVITY'),
    bathroomMs: t('BATHROOM_DWELL'),
    doorOpenMs: t('DOOR_LEFT_OPEN'),
    silentMs: t('DEVICE_OFFLINE'),
    awayAfterMs: AWAY_AFTER_MIN * MIN,
    lowBatteryPercent: thresholds.LOW_BATTERY!,
    awayUntil: household?.awayUntil ?? null,
    baseline: (household?.routine as { learnBaseline?: boolean } | undefined)?.learnBaseline === true,
  };
}

/** Household overrides are stored as free keys; only known rules with a positive number count. */
function validOverrides(o: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) {
    if ((RULES as readonly string[]).includes(k) && typeof v === 'number' && v > 0) out[k] = v;
  }
  return out;
}

export const DEFAULT_SETTINGS: RuleSettings = resolveSettings(null);
