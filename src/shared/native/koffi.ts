/**
 * The koffi module, typed, for CommonJS code.
 *
 * koffi's package is `"type": "module"` with one `index.d.ts` for both its `import` and `require` entry points, so
 * TypeScript (module node16) treats the typings as ESM and rejects `import koffi from 'koffi'` in a CommonJS file
 * (TS1479). At run time `require('koffi')` loads `index.cjs`, whose exports are exactly the declared default object,
 * so the type is borrowed from the ESM view and the value comes from require(). Import koffi from here.
 */
type Koffi = typeof import('koffi', { with: { 'resolution-mode': 'import' } }).default;

const koffi = require('koffi') as Koffi;

export default koffi;
