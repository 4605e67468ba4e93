/** A side drawer: a dialog that takes focus when it opens, closes on Escape, and returns focus after. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

export function Drawer(p: {
  title: string;
  closeLabel: string;
  onClose: () => void;
  children: ComponentChildren;
  testid?: string;
  wide?: boolean;
}) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    ref.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') p.onClose();
    };
    addEventListener('keydown', onKey);
    return () => {
      removeEventListener('keydown', onKey);
      before?.focus?.();
    };
  }, []);
  return (
    <div
      class={`drawer ${p.wide ? 'wide' : ''}`}
      role="dialog"
      aria-modal="true"
      aria-label={p.title}
      tabIndex={-1}
      ref={ref}
      data-testid={p.testid}
    >
      <header>
        <h2>{p.title}</h2>
        <button type="button" onClick={p.onClose} aria-label={p.closeLabel}>
          ✕
        </button>
      </header>
      <div class="drawer-body">{p.children}</div>
    </div>
  );
}
