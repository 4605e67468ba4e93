/**
 * Admin pages (SPEC §4, §8): grids, households, devices (across households, with filters; provisioning
 * shows the new secret once, with a copyable MQTT example), staff, the roster as a week grid per grid for
 * any week with one-off overrides, each community's escalation policy (ESC-01), import and export, and the
 * audit log. Each record can be corrected and retired (DATA-04). One file per screen; the table-and-form
 * they share is form.tsx.
 */

import type { SessionInfo } from '../api.ts';
import { type Lang, t } from '../i18n.ts';
import { AuditAdmin } from './audit.tsx';
import { DevicesAdmin } from './devices.tsx';
import { EscalationAdmin } from './escalation.tsx';
import { GridsAdmin } from './grids.tsx';
import { HouseholdsAdmin } from './households.tsx';
import { ImportExportAdmin } from './import-export.tsx';
import { RosterAdmin } from './roster.tsx';
import { StaffAdmin } from './staff.tsx';

const SECTIONS = [
  'grids',
  'households',
  'devices',
  'staff',
  'roster',
  'escalation',
  'importExport',
  'audit',
] as const;
type Section = (typeof SECTIONS)[number];
export function AdminPage({ lang, session, section }: { lang: Lang; session: SessionInfo; section: string }) {
  const s: Section = (SECTIONS as readonly string[]).includes(section) ? (section as Section) : 'grids';
  return (
    <main class="page admin">
      <nav class="subnav" aria-label={t(lang, 'adminNav')}>
        {SECTIONS.map((x) => (
          <a key={x} href={`#/admin/${x}`} aria-current={x === s ? 'page' : undefined} data-section={x}>
            {t(lang, x)}
          </a>
        ))}
      </nav>
      {s === 'grids' && <GridsAdmin lang={lang} />}
      {s === 'households' && <HouseholdsAdmin lang={lang} zone={session.zone} />}
      {s === 'devices' && <DevicesAdmin lang={lang} zone={session.zone} mqttPort={session.mqttPort} />}
      {s === 'staff' && <StaffAdmin lang={lang} />}
      {s === 'roster' && <RosterAdmin lang={lang} session={session} />}
      {s === 'escalation' && <EscalationAdmin lang={lang} />}
      {s === 'importExport' && <ImportExportAdmin lang={lang} />}
      {s === 'audit' && <AuditAdmin lang={lang} zone={session.zone} />}
    </main>
  );
}
