/**
 * The one table-and-form of the admin pages: a list of records on the left, the form that adds (or edits)
 * one on the right, and the status line that says what the server answered.
 */
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { type Lang, t } from '../i18n.ts';

export type Message = { ok: boolean; text: string } | null;

/** The server's answer to the last action, in words (an `ok` or an `error` status line). */
export const Status = ({ msg, testid }: { msg: Message; testid?: string }) =>
  msg ? (
    <p class={msg.ok ? 'ok' : 'error'} role="status" data-testid={testid}>
      {msg.text}
    </p>
  ) : null;

/** A form's fields by name (checkbox groups: every checked value). */
export function formValues(form: HTMLFormElement): {
  one: (k: string) => string;
  all: (k: string) => string[];
} {
  const data = new FormData(form);
  return { one: (k) => String(data.get(k) ?? ''), all: (k) => data.getAll(k).map(String) };
}

/** A form that hands its fields to `onSubmit` and shows the result or the server's message. */
export function Form(p: {
  lang: Lang;
  onSubmit: (v: Record<string, string>, form: HTMLFormElement) => Promise<unknown>;
  children: ComponentChildren;
  submit?: string;
  testid?: string;
  /** What a success says (default "created"); an edit form says "saved" and keeps its fields. */
  done?: 'created' | 'saved';
}) {
  const [msg, setMsg] = useState<Message>(null);
  const done = p.done ?? 'created';
  return (
    <form
      class="admin-form"
      data-testid={p.testid}
      onSubmit={(e) => {
        e.preventDefault();
        const form = e.currentTarget as HTMLFormElement;
        const v = Object.fromEntries([...new FormData(form).entries()].map(([k, x]) => [k, String(x)]));
        setMsg(null);
        p.onSubmit(v, form).then(
          () => {
            setMsg({ ok: true, text: t(p.lang, done) });
            if (done === 'created') form.reset();
          },
          (err: Error) => setMsg({ ok: false, text: err.message }),
        );
      }}
    >
      {p.children}
      <button type="submit" class="primary">
        {p.submit ?? t(p.lang, done === 'created' ? 'add' : 'save')}
      </button>
      <Status msg={msg} />
    </form>
  );
}

export const Field = (p: {
  label: string;
  name: string;
  required?: boolean;
  type?: 'text' | 'number' | 'tel' | 'password' | 'date' | 'time';
  placeholder?: string;
  value?: string;
  readOnly?: boolean;
}) => (
  <label>
    {p.label}
    <input
      name={p.name}
      required={p.required}
      type={(p.type ?? 'text') as 'text'}
      placeholder={p.placeholder}
      value={p.value}
      readOnly={p.readOnly}
    />
  </label>
);

export interface Column<T> {
  head: ComponentChildren;
  cell: (row: T) => ComponentChildren;
  class?: (row: T) => string | undefined;
}

/** The record list: one row per record, each with its id in a data attribute for tests and links. */
export function RecordTable<T>(p: {
  columns: Column<T>[];
  rows: T[];
  rowKey: (row: T) => string;
  /** Attributes of a row: its class and `data-*` ids. */
  rowProps?: (row: T) => Record<string, string | undefined>;
  testid?: string;
}) {
  return (
    <table class="compact" data-testid={p.testid}>
      <thead>
        <tr>
          {p.columns.map((c, i) => (
            <th key={i}>{c.head}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {p.rows.map((r) => (
          <tr key={p.rowKey(r)} {...(p.rowProps?.(r) ?? {})}>
            {p.columns.map((c, i) => (
              <td key={i} class={c.class?.(r)}>
                {c.cell(r)}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The admin layout: the list (scrolling) beside the form or editor. */
export const TableAndForm = (p: { table: ComponentChildren; aside: ComponentChildren }) => (
  <div class="admin-cols">
    <div class="scroll">{p.table}</div>
    <div>{p.aside}</div>
  </div>
);
