/**
 * Console entry: login, then the pages the person's role may see (SPEC §8): the dispatch room for
 * dispatchers, supervisors and admins; the responder page for grid staff; reports for supervisors and
 * admins; admin pages for admins. The server enforces every permission; the pages only follow it.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { AdminPage } from './admin/index.tsx';
import { ApiError, api, type SessionInfo, whenUnauthenticated } from './api.ts';
import { DispatchScreen } from './dispatch.tsx';
import { getLang, type Lang, setLang, t } from './i18n.ts';
import { ReportsPage } from './reports.tsx';
import { ResponderPage } from './responder.tsx';
import { SearchPage } from './search.tsx';

type Page = 'dispatch' | 'search' | 'respond' | 'admin' | 'reports';

function pagesFor(s: SessionInfo): Page[] {
  const p = new Set(s.permissions);
  const pages: Page[] = [];
  if (p.has('alerts.read.all')) pages.push('dispatch');
  if (p.has('alerts.respond')) pages.push('respond');
  if (p.has('reports.read')) pages.push('reports');
  if (p.has('registry.write')) pages.push('admin');
  return pages;
}

const NAV_KEY = {
  dispatch: 'dispatchNav',
  search: 'searchNav',
  respond: 'responderNav',
  admin: 'adminNav',
  reports: 'reportsNav',
} as const;

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function App() {
  const [lang, setLangState] = useState<Lang>(getLang());
  const [session, setSession] = useState<SessionInfo | null | undefined>(undefined);
  const [notice, setNotice] = useState<string | null>(null);
  const hash = useHash();
  useEffect(() => {
    whenUnauthenticated(() => {
      setSession((s) => {
        if (s) setNotice('sessionEnded');
        return null;
      });
    });
    api.session().then(setSession, () => setSession(null));
  }, []);
  const pages = session ? pagesFor(session) : [];
  const wanted = hash.replace(/^#\/?/, '').split('/')[0] as Page;
  // CONSOLE-04: whoever reads household files may open the search (the dispatch screen links to it; it is
  // a tool of the desk, not a page of its own in the tabs).
  const mayOpen: Page[] = session?.permissions.some(
    (x) => x === 'households.read.all' || x === 'households.read.own',
  )
    ? [...pages, 'search']
    : pages;
  const page = mayOpen.includes(wanted) ? wanted : pages[0];
  // CONSOLE-06: the responder's phone is titled for the responder, not the dispatch room.
  const title = page === 'respond' ? t(lang, 'responderTitle') : t(lang, 'title');
  useEffect(() => {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = session && page === 'respond' ? `${title} · ${session.staff.name}` : title;
  }, [lang, title, session]);
  if (session === undefined) return null;
  return (
    <>
      <header class="top">
        <h1 data-testid="page-title">{title}</h1>
        <span class="tagline">{t(lang, 'tagline')}</span>
        {session && pages.length > 1 && (
          <nav class="tabs" aria-label="pages">
            {pages.map((p) => (
              <a key={p} href={`#/${p}`} aria-current={p === page ? 'page' : undefined} data-page={p}>
                {t(lang, NAV_KEY[p])}
              </a>
            ))}
          </nav>
        )}
        <span class="spacer" />
        {session && <span class="who">{session.staff.name}</span>}
        <button
          type="button"
          onClick={() => {
            const next = lang === 'zh' ? 'en' : 'zh';
            setLang(next);
            setLangState(next);
          }}
        >
          {t(lang, 'lang')}
        </button>
        {session && (
          <button
            type="button"
            data-testid="logout"
            onClick={() => api.logout().finally(() => setSession(null))}
          >
            {t(lang, 'logout')}
          </button>
        )}
      </header>
      {!session ? (
        <Login
          lang={lang}
          notice={notice}
          onLogin={() =>
            api.session().then((s) => {
              setNotice(null);
              setSession(s);
            })
          }
        />
      ) : page === 'dispatch' ? (
        <DispatchScreen
          lang={lang}
          session={session}
          householdLink={
            hash.split('/')[2] === 'household' ? decodeURIComponent(hash.split('/')[3] ?? '') : null
          }
        />
      ) : page === 'search' ? (
        <SearchPage lang={lang} session={session} call={hash.split('/')[2] === 'call'} />
      ) : page === 'respond' ? (
        <ResponderPage lang={lang} session={session} />
      ) : page === 'reports' ? (
        <ReportsPage lang={lang} session={session} />
      ) : page === 'admin' ? (
        <AdminPage lang={lang} session={session} section={hash.split('/')[2] ?? 'grids'} />
      ) : (
        <p class="empty">{t(lang, 'readOnly')}</p>
      )}
    </>
  );
}

function Login({ lang, notice, onLogin }: { lang: Lang; notice: string | null; onLogin: () => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  return (
    <form
      class="login"
      onSubmit={(e) => {
        e.preventDefault();
        api
          .login(username, password)
          .then(onLogin, (err: unknown) =>
            setError(
              err instanceof ApiError && err.status === 401
                ? t(lang, 'badLogin')
                : err instanceof ApiError && err.status === 429
                  ? t(lang, 'tooMany')
                  : String((err as Error).message),
            ),
          );
      }}
    >
      {notice && <p class="notice">{t(lang, 'sessionEnded')}</p>}
      <label>
        {t(lang, 'username')}
        <input
          name="username"
          autocomplete="username"
          value={username}
          onInput={(e) => setUsername((e.target as HTMLInputElement).value)}
        />
      </label>
      <label>
        {t(lang, 'password')}
        <input
          name="password"
          type="password"
          autocomplete="current-password"
          value={password}
          onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
        />
      </label>
      <button type="submit" class="primary">
        {t(lang, 'login')}
      </button>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

render(<App />, document.getElementById('app')!);
