/** Retire (DATA-04): asks first, then the record leaves the lists; its history stays. */
import type { RetirableKind } from '../../../dispatcher/api/types.ts';
import { api } from '../api.ts';
import { type Lang, t } from '../i18n.ts';
import type { Column } from './form.tsx';

export const RetireButton = (p: {
  lang: Lang;
  kind: RetirableKind;
  id: string;
  onDone: () => unknown;
  onError: (message: string) => void;
}) => (
  <button
    type="button"
    class="danger"
    data-testid="retire"
    onClick={() => {
      if (!confirm(t(p.lang, 'retireConfirm'))) return;
      api.retire(p.kind, p.id).then(p.onDone, (e: Error) => p.onError(e.message));
    }}
  >
    {t(p.lang, 'retire')}
  </button>
);

/** The last column of an editable list: edit the row in the form beside it, or retire it. */
export const editColumn = <T,>(p: {
  lang: Lang;
  kind: RetirableKind;
  id: (row: T) => string;
  onEdit: (id: string) => unknown;
  onRetired: () => unknown;
  onError: (message: string) => void;
}): Column<T> => ({
  head: '',
  cell: (row) => (
    <span class="admin-row-actions">
      <button type="button" data-testid="edit" onClick={() => void p.onEdit(p.id(row))}>
        {t(p.lang, 'edit')}
      </button>
      <RetireButton lang={p.lang} kind={p.kind} id={p.id(row)} onDone={p.onRetired} onError={p.onError} />
    </span>
  ),
});
