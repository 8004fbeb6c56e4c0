// The Khronos glTF validator (npm "gltf-validator") on one file; prints its report as JSON.
//     node gltf_validate.mjs <gltf-validator package folder> <file.glb>
// The package folder is passed in because this script lives outside any node_modules.
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [packageDir, file] = process.argv.slice(2);
if (!packageDir || !file) {
    console.error('usage: node gltf_validate.mjs <gltf-validator folder> <file.glb>');
    process.exit(2);
}
const validator = (await import(pathToFileURL(join(packageDir, 'index.js')).href)).default;
const report = await validator.validateBytes(new Uint8Array(readFileSync(file)), {
    uri: basename(file),
    maxIssues: 100,
    externalResourceFunction: () => Promise.reject(new Error('external resources are not read')),
});
console.log(JSON.stringify(report, null, 1));
