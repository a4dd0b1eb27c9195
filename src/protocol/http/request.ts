/**
 * The HTTP codec's old entry point for requests, split into head.ts (request heads) and query.ts
 * (tracker queries). Kept only so that src/server/http/*.ts build unchanged while they are being
 * split: once they import from ./index.js, delete this file.
 */
export * from './head.js'
export * from './query.js'
