/**
 * A choice of grid, as a form field (`name` only: the form reads it) or as a filter (`value` and
 * `onChange`), optionally with "all grids" first. Used by the household form, the roster and the reports.
 */
import type { Grid } from '../../dispatcher/api/types.ts';
import { type Lang, t } from './i18n.ts';

export function GridSelect(p: {
  lang: Lang;
  grids: Grid[];
  name: string;
  value?: string;
  onChange?: (gridId: string) => void;
  all?: boolean;
  required?: boolean;
}) {
  const onChange = p.onChange;
  return (
    <label>
      {t(p.lang, 'grid')}{' '}
      <select
        name={p.name}
        required={p.required}
        value={p.value}
        onChange={onChange && ((e) => onChange((e.target as HTMLSelectElement).value))}
      >
        {p.all && <option value="">{t(p.lang, 'allGrids')}</option>}
        {p.grids.map((g) => (
          <option key={g.id} value={g.id}>
            {g.name}
          </option>
        ))}
      </select>
    </label>
  );
}
