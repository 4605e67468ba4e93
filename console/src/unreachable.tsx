/**
 * Responders whom no channel reached (NOTIFY-02): nobody else knows that this person will not hear of the
 * alert, so the dispatch screen says so at once, with a link to the alert (phone them, or reassign).
 */
import type { ServerToClientEvents } from '../../dispatcher/api/types.ts';
import { formatTime } from './format.ts';
import { type Lang, RULE_NAMES, t } from './i18n.ts';

export type Unreachable = Parameters<ServerToClientEvents['responderUnreachable']>[0];

/** The newest few; one line per (alert, person). */
export function keepUnreachable(list: Unreachable[], u: Unreachable): Unreachable[] {
  return [u, ...list.filter((x) => !(x.alertId === u.alertId && x.staffId === u.staffId))].slice(0, 8);
}

export function UnreachableNotices(p: {
  lang: Lang;
  zone: string;
  items: Unreachable[];
  /** Alerts still open, with their rule: a closed alert's notice is dropped. */
  open: Map<string, { rule: keyof (typeof RULE_NAMES)['zh'] }>;
  names: Map<string, string>;
  onAlert: (id: string) => void;
}) {
  const { lang } = p;
  return (
    <>
      {p.items
        .filter((u) => p.open.has(u.alertId))
        .map((u) => (
          <div
            class="notice red"
            role="alert"
            key={`${u.alertId}/${u.staffId}`}
            data-testid="responder-unreachable"
            data-staff={u.staffId}
          >
            <b>
              {t(lang, 'unreachableResponder')}: {p.names.get(u.staffId) ?? u.staffId}
            </b>
            <span>
              {formatTime(u.at, p.zone, lang)} · {t(lang, 'unreachableHint')} ·{' '}
              <button type="button" class="link" onClick={() => p.onAlert(u.alertId)}>
                {RULE_NAMES[lang][p.open.get(u.alertId)!.rule]}
              </button>
            </span>
          </div>
        ))}
    </>
  );
}
