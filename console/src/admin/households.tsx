/** Households (SPEC §4, 一户一档): address, grid, residents, contacts and access notes. */
import { useEffect, useState } from 'preact/hooks';
import type { Grid } from '../../../dispatcher/api/types.ts';
import { api, type HouseholdFile } from '../api.ts';
import { addressText } from '../format.ts';
import { GridSelect } from '../grid-select.tsx';
import { type Lang, t } from '../i18n.ts';
import { Field, Form, RecordTable, TableAndForm } from './form.tsx';

export function HouseholdsAdmin({ lang }: { lang: Lang }) {
  const [list, setList] = useState<HouseholdFile[]>([]);
  const [grids, setGrids] = useState<Grid[]>([]);
  const load = () => api.households().then((h) => setList(h.households));
  useEffect(() => {
    void load();
    api.grids().then((g) => setGrids(g.grids));
  }, []);
  return (
    <TableAndForm
      table={
        <RecordTable
          rows={list}
          rowKey={(h) => h.id}
          columns={[
            { head: 'ID', cell: (h) => h.id },
            { head: t(lang, 'grid'), cell: (h) => h.gridId },
            { head: t(lang, 'address'), cell: (h) => addressText(h.address) },
            { head: t(lang, 'residents'), cell: (h) => h.residents.map((r) => r.name).join('、') },
            { head: t(lang, 'contacts'), cell: (h) => h.contacts.length },
          ]}
        />
      }
      aside={
        <Form
          lang={lang}
          onSubmit={(v) =>
            api
              .saveHousehold({
                id: v.id,
                gridId: v.gridId,
                address: { building: v.building, unit: v.unit ?? '', room: v.room },
                residents: v.residentName
                  ? [
                      {
                        name: v.residentName,
                        ...(v.age ? { age: Number(v.age) } : {}),
                        ...(v.phone ? { phone: v.phone } : {}),
                      },
                    ]
                  : [],
                contacts:
                  v.contactName && v.contactPhone
                    ? [
                        {
                          name: v.contactName,
                          relation: v.relation ?? '',
                          phone: v.contactPhone,
                          // NOTIFY-04: told of safety alerts only when this contact agreed to it.
                          ...(v.contactUpdates === 'on' ? { updates: true } : {}),
                        },
                      ]
                    : [],
                accessNotes: v.accessNotes ?? '',
              })
              .then(load)
          }
        >
          <Field label="ID" name="id" required />
          <GridSelect lang={lang} grids={grids} name="gridId" required />
          <Field label={t(lang, 'building')} name="building" required />
          <Field label={t(lang, 'unit')} name="unit" />
          <Field label={t(lang, 'room')} name="room" required />
          <Field label={`${t(lang, 'residents')} · ${t(lang, 'name')}`} name="residentName" />
          <Field label={t(lang, 'age')} name="age" type="number" />
          <Field label={t(lang, 'phone')} name="phone" type="tel" />
          <Field label={`${t(lang, 'contacts')} · ${t(lang, 'name')}`} name="contactName" />
          <Field label={t(lang, 'relation')} name="relation" />
          <Field label={`${t(lang, 'contacts')} · ${t(lang, 'phone')}`} name="contactPhone" type="tel" />
          <label class="check">
            <input type="checkbox" name="contactUpdates" data-testid="contact-updates" />
            {t(lang, 'familyUpdatesOptIn')}
          </label>
          <Field label={t(lang, 'accessNotes')} name="accessNotes" />
        </Form>
      }
    />
  );
}
