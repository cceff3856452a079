import { Box, render, Text, useApp, useInput, useStdout } from 'ink';
import { useEffect, useState } from 'react';
import type { TopView } from '../ops/monitoring/monitor.js';
import { type TopLine, topLines } from './top.js';

const COLORS: Record<NonNullable<TopLine['tone']>, string> = {
  alert: 'red',
  warn: 'yellow',
  dim: 'gray',
  head: 'cyan',
};

export interface TopAppProps {
  /** Fetches the next view; called every `intervalMs`. */
  next: () => Promise<TopView>;
  intervalMs: number;
  onQuit?: () => void;
}

/** The live view: refreshes every intervalMs, `q` (or Esc) quits. */
export function TopApp({ next, intervalMs, onQuit }: TopAppProps) {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const [view, setView] = useState<TopView | undefined>();
  const [error, setError] = useState<string | undefined>();
  useInput((input, key) => {
    if (input === 'q' || key.escape) {
      onQuit?.();
      exit();
    }
  });
  useEffect(() => {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const tick = async () => {
      try {
        const v = await next();
        if (!stopped) {
          setView(v);
          setError(undefined);
        }
      } catch (err) {
        if (!stopped) setError((err as Error).message);
      }
      if (!stopped) timer = setTimeout(tick, intervalMs);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [next, intervalMs]);
  const width = stdout.columns || 80;
  const height = stdout.rows || 24;
  if (!view)
    return (
      <Text dimColor>{error ? `error: ${error}`.slice(0, width) : 'ifmesh top: looking at the mesh…'}</Text>
    );
  // One row less than the terminal so ink never scrolls the frame.
  const lines = topLines(view, { width, height: height - 1, live: true });
  return (
    <Box flexDirection="column">
      {lines.map((l, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: rows are positional
        <Text key={i} wrap="truncate-end" color={l.tone ? COLORS[l.tone] : undefined}>
          {l.text}
        </Text>
      ))}
    </Box>
  );
}

export async function runTopInk(
  stream: NodeJS.WriteStream,
  stdin: NodeJS.ReadStream,
  props: TopAppProps,
  signal: AbortSignal,
): Promise<void> {
  const app = render(<TopApp {...props} />, {
    stdout: stream,
    stdin,
    patchConsole: false,
    exitOnCtrlC: true,
  });
  const onAbort = () => app.unmount();
  signal.addEventListener('abort', onAbort, { once: true });
  await app.waitUntilExit();
  signal.removeEventListener('abort', onAbort);
}
