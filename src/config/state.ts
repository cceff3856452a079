// Kept for the commands that import it from here; the state directory's model is src/state/.
export { resolveStateDir } from '../state/state-dir.js';
