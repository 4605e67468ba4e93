import { useState } from 'preact/hooks';
import type { ImportProblem, ImportResult } from '../../../dispatcher/api/types.ts';
import { api, ImportError } from '../api.ts';
import { type Lang, t } from '../i18n.ts';

const CSV_KINDS = ['grids', 'households', 'staff', 'roster', 'devices'] as const;

/**
 * Registry import and export (SPEC §4): the whole registry as JSON, each part as CSV for a spreadsheet.
 * An import is checked in full first; one bad row applies nothing, and every bad row is listed.
 */
export function ImportExportAdmin({ lang }: { lang: Lang }) {
  const [kind, setKind] = useState<'json' | (typeof CSV_KINDS)[number]>('json');
  const [result, setResult] = useState<ImportResult | null>(null);
  const [problems, setProblems] = useState<ImportProblem[]>([]);
  const [error, setError] = useState<string | null>(null);
  return (
    <div class="admin-cols">
      <div class="admin-form" data-testid="export">
        <h3>{t(lang, 'exportJson')} / CSV</h3>
        <p>
          <a class="button" href="/api/registry/export" download data-testid="export-json">
            {t(lang, 'exportJson')}
          </a>
        </p>
        <p class="admin-row-actions">
          {CSV_KINDS.map((k) => (
            <a key={k} class="button" href={`/api/registry/export/${k}.csv`} download data-kind={k}>
              {t(lang, k)} CSV
            </a>
          ))}
        </p>
      </div>
      <form
        class="admin-form"
        data-testid="import-form"
        onSubmit={(e) => {
          e.preventDefault();
          const form = e.currentTarget as HTMLFormElement;
          const file = (form.elements.namedItem('file') as HTMLInputElement).files?.[0];
          if (!file) return;
          setResult(null);
          setProblems([]);
          setError(null);
          void file
            .text()
            .then((text) => {
              if (kind !== 'json') return api.importCsv(kind, text);
              let body: unknown;
              try {
                body = JSON.parse(text);
              } catch (err) {
                throw new Error(`JSON: ${(err as Error).message}`);
              }
              return api.importJson(body);
            })
            .then(setResult, (err: Error) => {
              setError(err.message);
              if (err instanceof ImportError) setProblems(err.errors);
            });
        }}
      >
        <h3>{kind === 'json' ? t(lang, 'importJson') : t(lang, 'importCsv')}</h3>
        <label>
          {t(lang, 'importKind')}
          <select
            name="kind"
            value={kind}
            onChange={(e) => setKind((e.target as HTMLSelectElement).value as 'json')}
          >
            <option value="json">JSON</option>
            {CSV_KINDS.map((k) => (
              <option key={k} value={k}>
                {t(lang, k)} CSV
              </option>
            ))}
          </select>
        </label>
        <label>
          {t(lang, 'importFile')}
          <input
            name="file"
            type="file"
            required
            accept={kind === 'json' ? '.json,application/json' : '.csv,text/csv'}
          />
        </label>
        <button type="submit" class="primary">
          {kind === 'json' ? t(lang, 'importJson') : t(lang, 'importCsv')}
        </button>
        {result && (
          <p class="ok" role="status" data-testid="import-result">
            {t(lang, 'imported')}: {CSV_KINDS.map((k) => `${t(lang, k)} ${result.imported[k]}`).join(' · ')}
          </p>
        )}
        {result && result.secrets.length > 0 && (
          <div class="secret" data-testid="import-secrets">
            <p class="warn">{t(lang, 'secretOnce')}</p>
            <table class="compact">
              <tbody>
                {result.secrets.map((x) => (
                  <tr key={x.id}>
                    <td>{x.id}</td>
                    <td>
                      <code>{x.secret}</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {error && (
          <p class="error" role="status" data-testid="import-error">
            {error}
          </p>
        )}
        {problems.length > 0 && (
          <table class="compact" data-testid="import-problems">
            <tbody>
              {problems.map((x) => (
                <tr key={`${x.row}|${x.field}`}>
                  <td>{x.row}</td>
                  <td>{x.field}</td>
                  <td>{x.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </form>
    </div>
  );
}
