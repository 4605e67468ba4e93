/**
 * The escalation policy (SLA-02, ESC-01): the ladder a community promises, as data. The SPEC §6 ladder is
 * the default; a community may set its own steps, minutes, whom each step tells and repeats, and the
 * promise itself (a rural community may promise 20 minutes). Every safety alert keeps a snapshot of the
 * policy it was raised under (ESC-02), so an edit never moves the clock of an alert already running.
 * Pure: a schema that refuses a policy with every reason at once, and the ladder derived from a policy.
 */
import { z } from 'zod';
import { type Duration, minutes } from '../../kernel/time.ts';

/**
 * What a step does, which says whom it tells (SPEC §6): the primary responder; the next responder and the
 * first again; every on-duty responder of the grid, flagged on the dispatch screen; the dispatch screen
 * (SLA at risk); the supervisors (SLA breached).
 */
export const STEP_KINDS = [
  'notify_primary',
  'notify_next',
  'notify_all',
  'sla_at_risk',
  'sla_breach',
] as const;
export type StepKind = (typeof STEP_KINDS)[number];

/** The milestone that makes a step moot: nobody is chased once accepted, the SLA steps once on site. */
export const STEP_UNLESS: Record<StepKind, 'accepted' | 'on_site' | null> = {
  notify_primary: null,
  notify_next: 'accepted',
  notify_all: 'accepted',
  sla_at_risk: 'on_site',
  sla_breach: 'on_site',
};

export interface PolicyStep {
  kind: StepKind;
  /** Minutes after the raise. */
  afterMin: number;
  /** A notify step told again every `everyMin` minutes, `times` more times, while nobody accepted. */
  repeat?: { everyMin: number; times: number };
}

export interface EscalationPolicy {
  /** SLA-01: accepted within this many minutes of the raise. */
  acceptWithinMin: number;
  /** SLA-01: a responder on site within this many minutes of the raise: the breach step's minute. */
  onSiteWithinMin: number;
  steps: PolicyStep[];
}

/** SPEC §6 and SLA-02: the default ladder. */
export const DEFAULT_POLICY: EscalationPolicy = Object.freeze({
  acceptWithinMin: 3,
  onSiteWithinMin: 15,
  steps: [
    { kind: 'notify_primary', afterMin: 0 },
    { kind: 'notify_next', afterMin: 3 },
    { kind: 'notify_all', afterMin: 6 },
    { kind: 'sla_at_risk', afterMin: 12 },
    { kind: 'sla_breach', afterMin: 15 },
  ],
}) as EscalationPolicy;

/** The longest promise a policy may make: beyond it the SPEC §6 service is not what is on offer. */
export const MAX_MINUTES = 240;
const minute = (max: number) =>
  z
    .number()
    .int('must be a whole number of minutes')
    .min(0, 'must be 0 or more minutes')
    .max(max, `must be at most ${max} minutes`);

/** ESC-01: a policy is checked when saved; every problem is named with its field, all at once. */
export const policySchema = z
  .strictObject({
    acceptWithinMin: minute(MAX_MINUTES).min(1, 'must be at least 1 minute'),
    onSiteWithinMin: minute(MAX_MINUTES).min(1, 'must be at least 1 minute'),
    steps: z
      .array(
        z.strictObject({
          kind: z.enum(STEP_KINDS, { message: `must be one of ${STEP_KINDS.join(', ')}` }),
          afterMin: minute(MAX_MINUTES),
          repeat: z
            .strictObject({
              everyMin: minute(60).min(1, 'must be at least 1 minute'),
              times: z.number().int().min(1).max(10, 'must be at most 10 repeats'),
            })
            .optional(),
        }),
      )
      .min(2, 'needs at least the first notice and the breach')
      .max(20, 'at most 20 steps'),
  })
  .superRefine((p, ctx) => {
    // WORDS-02: each problem carries its sentence in both languages; `en` is the message.
    const issue = (path: (string | number)[], en: string, zh: string) =>
      ctx.addIssue({ code: 'custom', path, message: en, params: { texts: { zh, en } } });
    if (p.acceptWithinMin > p.onSiteWithinMin)
      issue(['acceptWithinMin'], 'must not be later than onSiteWithinMin', '不能晚于上门时限');
    const first = p.steps[0]!;
    // ROUTE-01: a safety alert goes to the primary responder at once.
    if (first.kind !== 'notify_primary' || first.afterMin !== 0)
      issue(
        ['steps', 0],
        'the first step must be notify_primary at minute 0',
        '第一步须为第 0 分钟通知首位响应人',
      );
    p.steps.forEach((s, i) => {
      if (i > 0 && s.kind === 'notify_primary')
        issue(['steps', i, 'kind'], 'notify_primary is the first step only', '通知首位响应人只能是第一步');
      if (i > 0 && s.afterMin < p.steps[i - 1]!.afterMin)
        issue(['steps', i, 'afterMin'], 'steps must be in order of minutes', '步骤须按分钟先后排列');
      if (s.repeat && s.kind !== 'notify_next' && s.kind !== 'notify_all')
        issue(
          ['steps', i, 'repeat'],
          'only notify_next and notify_all steps repeat',
          '只有通知下一位或全部响应人的步骤可以重复',
        );
      if (s.kind === 'sla_at_risk' && s.afterMin >= p.onSiteWithinMin)
        issue(
          ['steps', i, 'afterMin'],
          'sla_at_risk must come before onSiteWithinMin',
          '超时预警须早于上门时限',
        );
    });
    const breaches = p.steps.flatMap((s, i) => (s.kind === 'sla_breach' ? [i] : []));
    if (breaches.length !== 1)
      issue(['steps'], 'needs exactly one sla_breach step', '须有且只有一个超时步骤');
    else if (p.steps[breaches[0]!]!.afterMin !== p.onSiteWithinMin)
      issue(
        ['steps', breaches[0]!, 'afterMin'],
        'the sla_breach step is at onSiteWithinMin',
        '超时步骤须在上门时限那一分钟',
      );
  });

/** One concrete rung of an alert's ladder: a step, or one repeat of it. */
export interface LadderStep {
  kind: StepKind;
  /** Offset from the raise. */
  after: Duration;
  /** The step is skipped once the alert has reached this milestone. */
  unless: 'accepted' | 'on_site' | null;
  /** 0 for the step itself, n for its n-th repeat (its notices are new ones, NOTIFY-05). */
  round: number;
}

const ladders = new WeakMap<EscalationPolicy, readonly LadderStep[]>();

/**
 * The ladder of a policy: its steps and their repeats in order of time (a tie keeps the policy's order).
 * An alert's `nextStep` indexes this list; deterministic, so the index means the same after a restart.
 */
export function ladderOf(policy: EscalationPolicy): readonly LadderStep[] {
  const known = ladders.get(policy);
  if (known) return known;
  const rungs: (LadderStep & { order: number })[] = [];
  policy.steps.forEach((s, i) => {
    const unless = STEP_UNLESS[s.kind];
    rungs.push({ kind: s.kind, after: minutes(s.afterMin), unless, round: 0, order: i });
    for (let n = 1; n <= (s.repeat?.times ?? 0); n++)
      rungs.push({
        kind: s.kind,
        after: minutes(s.afterMin + n * s.repeat!.everyMin),
        unless,
        round: n,
        order: i,
      });
  });
  const ladder = rungs
    .sort((a, b) => a.after - b.after || a.order - b.order || a.round - b.round)
    .map(({ order: _, ...r }) => Object.freeze(r));
  ladders.set(policy, ladder);
  return ladder;
}

/** The policy an alert runs under: its snapshot, or the default for an alert that has none (technical). */
export const policyOf = (a: { policy?: EscalationPolicy | null }): EscalationPolicy =>
  a.policy ?? DEFAULT_POLICY;
