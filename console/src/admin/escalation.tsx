/**
 * Escalation policies (ESC-01): each community's promise and ladder, read in words and edited by the
 * admin. The server checks a policy in full and answers every problem at once, in the reader's language
 * (WORDS-02); a saved policy applies to alerts raised after it, alerts already open keep theirs (ESC-02).
 */
import { useEffect, useState } from 'preact/hooks';
import type { CommunityPolicy, EscalationPolicy, PolicyStep } from '../../../dispatcher/api/types.ts';
import { api } from '../api.ts';
import { type Lang, t } from '../i18n.ts';
import { promiseWords, STEP_KINDS, STEP_WORDS, stepWords } from '../ladder-words.ts';
import { type Message, RecordTable, Status, TableAndForm } from './form.tsx';

/** Only these steps chase someone again while nobody accepted (the server refuses a repeat elsewhere). */
const REPEATS: PolicyStep['kind'][] = ['notify_next', 'notify_all'];

const copy = (p: EscalationPolicy): EscalationPolicy => JSON.parse(JSON.stringify(p)) as EscalationPolicy;

/** A number input's value: a whole number, or NaN for the server to refuse by name. */
const num = (e: Event) => {
  const v = (e.currentTarget as HTMLInputElement).value;
  return v === '' ? Number.NaN : Number(v);
};

export function EscalationAdmin({ lang }: { lang: Lang }) {
  const [list, setList] = useState<CommunityPolicy[]>([]);
  const [fallback, setFallback] = useState<EscalationPolicy | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [draft, setDraft] = useState<EscalationPolicy | null>(null);
  const [msg, setMsg] = useState<Message>(null);
  const load = () =>
    api.escalationPolicies().then((r) => {
      setList(r.communities);
      setFallback(r.default);
      return r.communities;
    });
  useEffect(() => {
    void load();
  }, []);
  const edit = (c: CommunityPolicy) => {
    setEditing(c.community);
    setDraft(copy(c.policy));
    setMsg(null);
  };
  const change = (fn: (p: EscalationPolicy) => void) => {
    if (!draft) return;
    const next = copy(draft);
    fn(next);
    setDraft(next);
  };
  const setStep = (i: number, fn: (s: PolicyStep) => void) => change((p) => fn(p.steps[i]!));

  return (
    <TableAndForm
      table={
        <>
          <p class="muted">{t(lang, 'escalationIntro')}</p>
          <RecordTable
            testid="policy-list"
            rows={list}
            rowKey={(c) => c.community}
            rowProps={(c) => ({ 'data-community': c.community })}
            columns={[
              { head: t(lang, 'community'), cell: (c) => c.community },
              { head: '', cell: (c) => promiseWords(c.policy, lang) },
              {
                head: '',
                cell: (c) => (
                  <span data-testid="policy-origin">
                    {t(lang, c.isDefault ? 'policyDefault' : 'policyOwn')}
                  </span>
                ),
              },
              {
                head: '',
                cell: (c) => (
                  <button type="button" data-testid="policy-edit" onClick={() => edit(c)}>
                    {t(lang, 'edit')}
                  </button>
                ),
              },
            ]}
          />
        </>
      }
      aside={
        draft &&
        editing && (
          <form
            class="admin-form"
            data-testid="policy-form"
            onSubmit={(e) => {
              e.preventDefault();
              setMsg(null);
              api.saveEscalationPolicy(editing, draft).then(
                async (r) => {
                  setDraft(copy(r.policy.policy));
                  await load();
                  setMsg({ ok: true, text: t(lang, 'saved') });
                },
                (err: Error) => setMsg({ ok: false, text: err.message }),
              );
            }}
          >
            <h3>
              {t(lang, 'escalation')}: {editing}
            </h3>
            <label>
              {t(lang, 'acceptWithin')}
              <input
                name="acceptWithinMin"
                type="number"
                value={draft.acceptWithinMin}
                onInput={(e) => change((p) => (p.acceptWithinMin = num(e)))}
              />
            </label>
            <label>
              {t(lang, 'onSiteWithin')}
              <input
                name="onSiteWithinMin"
                type="number"
                value={draft.onSiteWithinMin}
                onInput={(e) => change((p) => (p.onSiteWithinMin = num(e)))}
              />
            </label>
            <table class="compact" data-testid="policy-steps">
              <thead>
                <tr>
                  <th>{t(lang, 'policyStep')}</th>
                  <th>{t(lang, 'afterMin')}</th>
                  <th>{t(lang, 'repeatEvery')}</th>
                  <th>{t(lang, 'repeatTimes')}</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {draft.steps.map((s, i) => (
                  <tr key={i} data-step={i}>
                    <td>
                      <select
                        name="kind"
                        value={s.kind}
                        onChange={(e) =>
                          setStep(i, (x) => {
                            x.kind = (e.currentTarget as HTMLSelectElement).value as PolicyStep['kind'];
                            if (!REPEATS.includes(x.kind)) delete x.repeat;
                          })
                        }
                      >
                        {STEP_KINDS.map((k) => (
                          <option key={k} value={k}>
                            {STEP_WORDS[lang][k]}
                          </option>
                        ))}
                      </select>
                    </td>
                    <td>
                      <input
                        name="afterMin"
                        type="number"
                        value={s.afterMin}
                        onInput={(e) => setStep(i, (x) => (x.afterMin = num(e)))}
                      />
                    </td>
                    <td>
                      {REPEATS.includes(s.kind) && (
                        <input
                          name="everyMin"
                          type="number"
                          value={s.repeat?.everyMin ?? ''}
                          onInput={(e) =>
                            setStep(i, (x) => {
                              const every = num(e);
                              if (Number.isNaN(every) && !x.repeat?.times) delete x.repeat;
                              else x.repeat = { everyMin: every, times: x.repeat?.times ?? 1 };
                            })
                          }
                        />
                      )}
                    </td>
                    <td>
                      {REPEATS.includes(s.kind) && s.repeat && (
                        <input
                          name="times"
                          type="number"
                          value={s.repeat.times}
                          onInput={(e) =>
                            setStep(i, (x) => (x.repeat = { everyMin: x.repeat!.everyMin, times: num(e) }))
                          }
                        />
                      )}
                    </td>
                    <td>
                      <button
                        type="button"
                        data-testid="step-remove"
                        onClick={() => change((p) => p.steps.splice(i, 1))}
                      >
                        {t(lang, 'removeStep')}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <p>
              <button
                type="button"
                data-testid="step-add"
                onClick={() =>
                  change((p) => {
                    const last = p.steps.at(-1)?.afterMin ?? 0;
                    p.steps.push({ kind: 'notify_all', afterMin: last });
                  })
                }
              >
                {t(lang, 'addStep')}
              </button>{' '}
              {fallback && (
                <button type="button" data-testid="policy-default" onClick={() => setDraft(copy(fallback))}>
                  {t(lang, 'useDefault')}
                </button>
              )}
            </p>
            <div class="ladder" data-testid="policy-preview">
              <p class="muted">{t(lang, 'policyPreview')}</p>
              <p>{promiseWords(draft, lang)}</p>
              <ol>
                {draft.steps.map((s, i) => (
                  <li key={i}>{stepWords(s, lang)}</li>
                ))}
              </ol>
            </div>
            <button type="submit" class="primary">
              {t(lang, 'save')}
            </button>
            <Status msg={msg} testid="policy-status" />
          </form>
        )
      }
    />
  );
}
