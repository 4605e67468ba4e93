/**
 * First start (CONSOLE-07): while the community is not fully registered, the dispatch screen says what to
 * do first, in order (grids, staff, roster, households, devices), each with a link to the admin page where
 * it is done (for admins; a desk is told to ask one), ticked off once done. Nothing shows once all are.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, type SessionInfo } from './api.ts';
import { type Key, type Lang, t } from './i18n.ts';

const RESPONDER_ROLES = ['grid_worker', 'social_worker', 'building_leader', 'volunteer', 'property_duty'];
const STEPS = [
  { key: 'grids', text: 'stepGrids' },
  { key: 'staff', text: 'stepStaff' },
  { key: 'roster', text: 'stepRoster' },
  { key: 'households', text: 'stepHouseholds' },
  { key: 'devices', text: 'stepDevices' },
] as const satisfies readonly { key: string; text: Key }[];
type Step = (typeof STEPS)[number]['key'];

/** Which steps are done, from what the registry holds now; null until read (or when it cannot be read). */
async function progress(): Promise<Record<Step, boolean>> {
  const [grids, staff, roster, households, devices] = await Promise.all([
    api.grids(),
    api.staff(),
    api.roster(),
    api.households(),
    api.deviceHealth(),
  ]);
  const rostered = new Set(roster.entries.map((e) => e.gridId));
  return {
    grids: grids.grids.length > 0,
    staff: staff.staff.some((s) => s.roles.some((r) => RESPONDER_ROLES.includes(r))),
    roster: grids.grids.length > 0 && grids.grids.every((g) => rostered.has(g.id)),
    households: households.households.length > 0,
    devices: devices.total > 0,
  };
}

export function FirstStart({ lang, session }: { lang: Lang; session: SessionInfo }) {
  const [done, setDone] = useState<Record<Step, boolean> | null>(null);
  useEffect(() => {
    if (!session.permissions.includes('registry.read')) return;
    progress().then(setDone, () => setDone(null));
  }, []);
  if (!done || STEPS.every((s) => done[s.key])) return null;
  const admin = session.permissions.includes('registry.write');
  return (
    <section class="panel first-start" data-testid="first-start">
      <h2>{admin ? t(lang, 'firstStart') : t(lang, 'firstStartDesk')}</h2>
      <ol>
        {STEPS.map((s) => (
          <li key={s.key} class={done[s.key] ? 'done' : ''} data-step={s.key} data-done={done[s.key]}>
            {t(lang, s.text)}
            {done[s.key] ? (
              <span class="tag"> {t(lang, 'stepDone')}</span>
            ) : (
              admin && (
                <>
                  {' '}
                  <a href={`#/admin/${s.key}`} data-link={s.key}>
                    {t(lang, 'stepTodo')} →
                  </a>
                </>
              )
            )}
          </li>
        ))}
      </ol>
    </section>
  );
}
