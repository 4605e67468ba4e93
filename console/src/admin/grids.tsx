/** Grids (SPEC §4): id, name, community and leader. */
import { useEffect, useState } from 'preact/hooks';
import type { Grid } from '../../../dispatcher/api/types.ts';
import { api } from '../api.ts';
import { type Lang, t } from '../i18n.ts';
import { Field, Form, RecordTable, TableAndForm } from './form.tsx';

export function GridsAdmin({ lang }: { lang: Lang }) {
  const [grids, setGrids] = useState<Grid[]>([]);
  const load = () => api.grids().then((g) => setGrids(g.grids));
  useEffect(() => void load(), []);
  return (
    <TableAndForm
      table={
        <RecordTable
          rows={grids}
          rowKey={(g) => g.id}
          columns={[
            { head: 'ID', cell: (g) => g.id },
            { head: t(lang, 'name'), cell: (g) => g.name },
            { head: t(lang, 'community'), cell: (g) => g.community },
            { head: t(lang, 'leader'), cell: (g) => g.leaderId ?? '—' },
          ]}
        />
      }
      aside={
        <Form
          lang={lang}
          onSubmit={(v) =>
            api
              .saveGrid({ id: v.id!, name: v.name!, community: v.community!, leaderId: v.leaderId || null })
              .then(load)
          }
        >
          <Field label="ID" name="id" required />
          <Field label={t(lang, 'name')} name="name" required />
          <Field label={t(lang, 'community')} name="community" required />
          <Field label={t(lang, 'leader')} name="leaderId" />
        </Form>
      }
    />
  );
}
