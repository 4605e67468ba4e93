/** Console entry: login, then the page for the person's role. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { Staff } from '../../dispatcher/api/types.ts';
import { ApiError, api } from './api.ts';
import { DispatchScreen } from './dispatch.tsx';
import { getLang, type Lang, setLang, t } from './i18n.ts';
import { ResponderPage } from './responder.tsx';

const DISPATCH_ROLES = ['dispatcher', 'admin', 'supervisor'];

function App() {
  const [lang, setLangState] = useState<Lang>(getLang());
  const [me, setMe] = useState<Staff | null | undefined>(undefined);
  useEffect(() => {
    api.me().then(
      (r) => setMe(r.staff),
      () => setMe(null),
    );
  }, []);
  useEffect(() => {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t(lang, 'title');
  }, [lang]);
  if (me === undefined) return null;
  const dispatch = me?.roles.some((r) => DISPATCH_ROLES.includes(r));
  return (
    <>
      <header class="top">
        <h1>{t(lang, 'title')}</h1>
        <span class="tagline">{t(lang, 'tagline')}</span>
        <span class="spacer" />
        {me && <span class="who">{me.name}</span>}
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
        {me && (
          <button type="button" onClick={() => api.logout().finally(() => setMe(null))}>
            {t(lang, 'logout')}
          </button>
        )}
      </header>
      {!me ? (
        <Login lang={lang} onLogin={setMe} />
      ) : dispatch ? (
        <DispatchScreen lang={lang} me={me} />
      ) : (
        <ResponderPage lang={lang} me={me} />
      )}
    </>
  );
}

function Login({ lang, onLogin }: { lang: Lang; onLogin: (s: Staff) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  return (
    <form
      class="login"
      onSubmit={(e) => {
        e.preventDefault();
        api.login(username, password).then(
          (r) => onLogin(r.staff),
          (err: unknown) =>
            setError(
              err instanceof ApiError && err.status === 401
                ? t(lang, 'badLogin')
                : String((err as Error).message),
            ),
        );
      }}
    >
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
