// PlayCanvas engine's own KHR_gaussian_splatting reader on one .glb: the splats it would render.
//     node playcanvas_glb.mjs <playcanvas package folder> <file.glb> <out.f32>
// Prints {"count": N, "properties": [names]} and writes the properties as float32 columns, in that
// order, to <out.f32>. The engine's glb parser needs a graphics device to finish, so this splits the
// GLB chunks as its parseGlb does, slices the buffer views as its createBufferViews does, and calls
// the extension's createResources; the splat data is taken as it is handed over to the GPU side
// (GSplatData.reorderData, before the engine reorders the splats for rendering).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [packageDir, file, out] = process.argv.slice(2);
if (!packageDir || !file || !out) {
    console.error('usage: node playcanvas_glb.mjs <playcanvas folder> <file.glb> <out.f32>');
    process.exit(2);
}
const source = join(packageDir, 'build', 'playcanvas', 'src');
const load = (path) => import(pathToFileURL(join(source, path)).href);
const { khrGaussianSplatting } = await load('framework/parsers/glb/extensions/khr-gaussian-splatting.js');
const { GSplatData } = await load('scene/gsplat/gsplat-data.js');

const bytes = readFileSync(file);
const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const chunks = [];
for (let at = 12; at < view.getUint32(8, true); at += 8 + view.getUint32(at, true)) {
    chunks.push(new Uint8Array(bytes.buffer, bytes.byteOffset + at + 8, view.getUint32(at, true)));
}
const gltf = JSON.parse(new TextDecoder().decode(chunks[0]));
const bufferViews = gltf.bufferViews.map((v) => new Uint8Array(chunks[1].buffer,
    chunks[1].byteOffset + (v.byteOffset || 0), v.byteLength));

let captured = null;
const handedOver = new Error('splat data captured');
GSplatData.prototype.reorderData = function () {
    captured = this;
    throw handedOver;
};
try {
    khrGaussianSplatting.createResources(null, gltf, bufferViews);
} catch (e) {
    if (e !== handedOver) throw e;
}
if (!captured) {
    console.error('PlayCanvas found no Gaussian splats in ' + file);
    process.exit(1);
}
const properties = captured.elements[0].properties;
writeFileSync(out, Buffer.concat(properties.map((p) => Buffer.from(p.storage.buffer, p.storage.byteOffset,
    p.storage.byteLength))));
console.log(JSON.stringify({ count: captured.numSplats, properties: properties.map((p) => p.name) }));
