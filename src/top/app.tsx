/** Runs the live screen until the user quits. Imported lazily by `tracker top` (Ink and React load here). */
import {render} from 'ink'
import {Dashboard, type Fetcher} from './Dashboard.js'

export async function runDashboard(url: string, fetchText: Fetcher, intervalMs: number): Promise<void> {
  const app = render(<Dashboard url={url} fetchText={fetchText} intervalMs={intervalMs} />, {exitOnCtrlC: true})
  await app.waitUntilExit()
}
