import { render, Text } from 'ink';

/** A text redrawn in place on a terminal (ink erases the last frame and draws the next). */
export function liveView(stream: NodeJS.WriteStream): { show(text: string): void; close(): Promise<void> } {
  const app = render(<Text>{''}</Text>, { stdout: stream, patchConsole: false, exitOnCtrlC: false });
  return {
    show: (text) => app.rerender(<Text>{text}</Text>),
    async close() {
      const exited = app.waitUntilExit();
      app.unmount();
      await exited;
    },
  };
}
