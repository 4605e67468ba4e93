/** Retire (DATA-04): asks first, then the record leaves the lists; its history stays. */
import type { RetirableKind } from '../../../dispatcher/api/types.ts';
import { api } from '../api.ts';
import { type Lang, t } from '../i18n.ts';

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
