import { Box, render, Text } from 'ink';
import { useEffect, useState } from 'react';
import type { OutStream } from '../cli/context.js';
import { MARK, type Progress, type StepState } from './progress.js';

interface Step {
  name: string;
  state: StepState;
  detail?: string | undefined;
}

interface Info {
  id: number;
  text: string;
}

const COLOR = { ok: 'green', warn: 'yellow', fail: 'red' } as const;

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

function View({ subscribe }: { subscribe: (fn: (steps: Step[], info: Info[]) => void) => void }) {
  const [steps, setSteps] = useState<Step[]>([]);
  const [info, setInfo] = useState<Info[]>([]);
  const [frame, setFrame] = useState(0);
  useEffect(() => {
    subscribe((s, i) => {
      setSteps([...s]);
      setInfo([...i]);
    });
    const t = setInterval(() => setFrame((f) => (f + 1) % FRAMES.length), 80);
    return () => clearInterval(t);
  }, [subscribe]);
  return (
    <Box flexDirection="column">
      {steps.map((s) => (
        <Text key={s.name}>
          {s.state === 'running' ? (
            <Text color="cyan">{FRAMES[frame]}</Text>
          ) : (
            <Text color={COLOR[s.state]}>{MARK[s.state]}</Text>
          )}{' '}
          {s.name}
          {s.detail ? <Text dimColor> {s.detail}</Text> : null}
        </Text>
      ))}
      {info.map((line) => (
        <Text key={line.id} dimColor>
          {line.text}
        </Text>
      ))}
    </Box>
  );
}

export function inkProgress(stream: OutStream): Progress {
  const steps: Step[] = [];
  const info: Info[] = [];
  let push: (s: Step[], i: Info[]) => void = () => {};
  const app = render(<View subscribe={(fn) => (push = fn)} />, {
    stdout: stream as NodeJS.WriteStream,
    patchConsole: false,
  });
  const update = () => push(steps, info);
  return {
    step(name, state, detail) {
      const s = steps.find((x) => x.name === name);
      if (s) Object.assign(s, { state, detail });
      else steps.push({ name, state, detail });
      update();
    },
    info(line) {
      info.push({ id: info.length, text: line });
      update();
    },
    async close() {
      // Finished: the view gives way to the result printed after it (never a second copy). Stopped
      // mid-step (an error follows): it stays, the unfinished steps marked as not done.
      const finished = steps.every((s) => s.state !== 'running');
      for (const s of steps) if (s.state === 'running') s.state = 'fail';
      update();
      await new Promise((r) => setTimeout(r, 100));
      if (finished) app.clear();
      const exited = app.waitUntilExit();
      app.unmount();
      await exited;
    },
  };
}
