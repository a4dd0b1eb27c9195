/** The addons in `native/` (built by `npm ci` on Linux; see native/binding.gyp). */
import {createRequire} from 'node:module'

const loaded = new Map<string, unknown>()

/** The addon `name`, or null when it was not built (not Linux, or no compiler at install). */
export function nativeAddon<T>(name: 'udp_batch' | 'tcp_batch'): T | null {
  if (!loaded.has(name)) {
    let addon: unknown = null
    try {
      // dist/src/io/native.js -> native/build/Release/
      addon = createRequire(import.meta.url)(`../../../native/build/Release/${name}.node`)
    } catch {
      // Not built: callers fall back to Node's own I/O.
    }
    loaded.set(name, addon)
  }
  return loaded.get(name) as T | null
}
