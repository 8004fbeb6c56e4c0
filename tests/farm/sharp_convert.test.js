// SPDX-License-Identifier: GPL-3.0-or-later
// The Flamenco job type farm/flamenco/sharp_convert.js, compiled against tests/farm/flamenco_stub.js.
// Run: node --test tests/farm/sharp_convert.test.js   (Node 18+; tests/farm/test_flamenco.py runs it from pytest)

"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const nodePath = require("node:path");
const stub = require("./flamenco_stub.js");

const SCRIPT = nodePath.join(__dirname, "..", "..", "farm", "flamenco", "sharp_convert.js");

function compile(settings) {
    return stub.compile(SCRIPT, { name: "photos", type: "sharp-convert", settings });
}

const BASE = { input_folder: "/shared/photos", image_count: 25, output_folder: "/shared/splats" };

// the --range of each task, as [first, last]
function ranges(job) {
    return job.tasks.map((task) => {
        const args = task.commands[0].parameters.args;
        const [first, last] = args[args.indexOf("--range") + 1].split("-").map(Number);
        return [first, last];
    });
}

test("the stub reads JOB_TYPE like the Manager: every setting documented, defaults among the choices", () => {
    const { JOB_TYPE } = stub.loadJobType(SCRIPT);
    assert.equal(typeof JOB_TYPE.label, "string");
    const keys = JOB_TYPE.settings.map((s) => s.key);
    for (const key of ["input_folder", "input_files", "image_count", "output_folder", "format", "device",
        "precision", "checkpoint", "chunk_size", "render", "render_engine", "move", "frames"]) {
        assert.ok(keys.includes(key), key);
    }
    for (const setting of JOB_TYPE.settings) {
        assert.ok(setting.description, setting.key);
        assert.ok(["string", "int32", "bool"].includes(setting.type), setting.key);
        if (setting.choices) {
            assert.ok(setting.choices.includes(setting.default), setting.key);
        }
    }
});

test("every image lands in exactly one chunk, in order, for many counts and chunk sizes", () => {
    for (const count of [1, 2, 3, 7, 10, 25, 101]) {
        for (const chunk of [1, 2, 3, 10, 25, 1000]) {
            const job = compile({ ...BASE, image_count: count, chunk_size: chunk });
            const seen = [];
            for (const [first, last] of ranges(job)) {
                assert.ok(last - first + 1 <= chunk && last >= first);
                for (let i = first; i <= last; i++) {
                    seen.push(i);
                }
            }
            assert.deepEqual(seen, Array.from({ length: count }, (_, i) => i), `${count} / ${chunk}`);
            assert.equal(job.tasks.length, Math.ceil(count / chunk));
        }
    }
});

test("each task runs the batch command on the worker's Blender with its range and its own failures file", () => {
    const job = compile({ ...BASE, chunk_size: 10, format: "blend", device: "cuda", precision: "bf16",
        checkpoint: "/shared/models/sharp_2572gikvuh.pt", render: true, render_engine: "exact", move: "ORBIT",
        frames: 24 });
    assert.deepEqual(job.tasks.map((t) => t.name), ["sharp-0-9", "sharp-10-19", "sharp-20-24"]);
    const task = job.tasks[2];
    assert.equal(task.type, "blender");
    assert.equal(task.commands.length, 1);
    const command = task.commands[0];
    assert.equal(command.name, "blender-render");
    assert.equal(command.totalStepCount, 5); // one step per photo: a "Time:" line each
    // the worker runs exe, exeArgs, argsBefore, blendfile, args: "-c" as the blend file makes the same
    // `blender -b -y -c sharp predict ...` whether the worker requires a blend file (3.0-3.4) or not
    assert.deepEqual({ ...command.parameters, args: undefined }, {
        exe: "{blender}", exeArgs: "{blenderArgs}", argsBefore: [], blendfile: "-c", args: undefined });
    assert.deepEqual(command.parameters.args, [
        "sharp", "predict", "-i", "/shared/photos", "-o", "/shared/splats", "--format", "blend",
        "--device", "cuda", "--precision", "bf16", "--checkpoint", "/shared/models/sharp_2572gikvuh.pt",
        "--render", "--render-engine", "exact", "--move", "ORBIT", "--frames", "24",
        "--range", "20-24", "--skip-existing",
        "--allow-failures", "--failures-file", "/shared/splats/sharp-failures-20-24.txt"]);
    for (const arg of command.parameters.args) {
        assert.equal(typeof arg, "string"); // a worker passes each as one argument
    }
    const lists = job.tasks.map((t) => {
        const args = t.commands[0].parameters.args;
        return args[args.indexOf("--failures-file") + 1];
    });
    assert.equal(new Set(lists).size, job.tasks.length); // parallel tasks never write one file
});

test("defaults apply to settings a submission leaves out (the Manager fills none in)", () => {
    const job = compile({ ...BASE });
    assert.deepEqual(ranges(job), [[0, 19], [20, 24]]);
    const args = job.tasks[0].commands[0].parameters.args;
    assert.deepEqual(args.slice(args.indexOf("--format"), args.indexOf("--range")),
        ["--format", "both", "--device", "auto", "--precision", "auto"]);
    for (const option of ["--render", "--render-engine", "--checkpoint", "--move", "--frames"]) {
        assert.ok(!args.includes(option), option);
    }
    // what Flamenco's add-on sends for a job without move or render: every setting, at its default
    const fromAddon = compile({ ...BASE, render: false, render_engine: "cycles", move: "none", frames: 48,
        checkpoint: "", input_files: "", input_folder_resolved: "", output_folder_resolved: "",
        checkpoint_resolved: "" });
    assert.deepEqual(fromAddon.tasks[0].commands[0].parameters.args, args);
});

test("a list of files: each given once to every task, counted by the script", () => {
    const job = compile({ output_folder: "/out", chunk_size: 2,
        input_files: "/p/b.jpg; /p/a.jpg\n/p/sub/c.png\r\n/p/a.jpg;;" });
    assert.deepEqual(ranges(job), [[0, 1], [2, 2]]);
    for (const task of job.tasks) {
        const args = task.commands[0].parameters.args;
        assert.deepEqual(args.slice(2, args.indexOf("-o")), ["-i", "/p/b.jpg", "/p/a.jpg", "/p/sub/c.png"]);
    }
    assert.throws(() => compile({ output_folder: "/out", input_files: "/p/a.jpg", image_count: 4 }),
        /image_count is 4 but input_files names 1 photos/);
});

test("odd batches: one image, a chunk larger than the batch, no images", () => {
    assert.deepEqual(ranges(compile({ ...BASE, image_count: 1 })), [[0, 0]]);
    assert.deepEqual(ranges(compile({ ...BASE, image_count: 3, chunk_size: 50 })), [[0, 2]]);
    assert.equal(compile({ ...BASE, image_count: 3, chunk_size: 50 }).tasks[0].commands[0].totalStepCount, 3);
    assert.throws(() => compile({ ...BASE, image_count: 0 }), /image_count must be at least 1/);
    assert.throws(() => compile({ output_folder: "/out", input_files: " ; \n" }), /input_folder or input_files is required/);
});

test("bad settings are refused with a message saying what is wrong", () => {
    const cases = [
        [{ ...BASE, output_folder: undefined }, /output_folder is required/],
        [{ ...BASE, output_folder: "  " }, /output_folder is required/],
        [{ ...BASE, chunk_size: 0 }, /chunk_size must be a whole number of at least 1; got 0/],
        [{ ...BASE, chunk_size: -3 }, /chunk_size must be a whole number of at least 1/],
        [{ ...BASE, chunk_size: 2.5 }, /chunk_size must be a whole number; got 2.5/],
        [{ ...BASE, chunk_size: "ten" }, /chunk_size must be a whole number/],
        [{ ...BASE, format: "obj" }, /format must be one of ply, blend, both, compressed-ply, spz, glb, sog, splat, usd; got 'obj'/],
        [{ ...BASE, device: "tpu" }, /device must be one of auto, cuda, mps, cpu/],
        [{ ...BASE, precision: "int8" }, /precision must be one of/],
        [{ ...BASE, format: "ply", render: true }, /render needs format 'blend' or 'both'/],
        [{ ...BASE, input_files: "/p/a.jpg" }, /not both/],
        [{ output_folder: "/out" }, /input_folder or input_files is required/],
        [{ ...BASE, image_count: -1 }, /image_count must be at least 1/],
        [{ ...BASE, input_folder: 7 }, /input_folder must be text/],
        [{ ...BASE, render: true, render_engine: "eevee" }, /render_engine must be one of cycles, exact; got 'eevee'/],
        [{ ...BASE, move: "orbit" }, /move must be one of none, DOLLY_IN, ORBIT, SWING, RISE, KEN_BURNS; got 'orbit'/],
        [{ ...BASE, format: "ply", move: "ORBIT" }, /move needs format 'blend' or 'both'/],
        [{ ...BASE, move: "ORBIT", frames: 1 }, /frames must be a whole number of at least 2; got 1/],
        [{ ...BASE, move: "ORBIT", frames: 2.5 }, /frames must be a whole number; got 2.5/],
    ];
    for (const [settings, message] of cases) {
        assert.throws(() => compile(settings), message, JSON.stringify(settings));
    }
});

test("the stub's frameChunker keeps Flamenco's semantics (two frames merge as 'A,B')", () => {
    assert.deepEqual(stub.frameChunker("1-10", 4), ["1-4", "5-8", "9,10"]);
    assert.deepEqual(stub.frameChunker("1..3,7", 10), ["1-3,7"]);
    assert.deepEqual(stub.frameChunker("5", 3), ["5"]);
    assert.throws(() => stub.frameChunker("", 3), /empty range/);
    assert.throws(() => stub.frameChunker("1-3", 0), /invalid chunk size/);
    assert.equal(stub.frameCount("1-3,5,5"), 4);
    assert.equal(stub.path.join("/a/b", "../c", "d.png"), "/a/c/d.png");
    assert.equal(stub.path.stem("C:\\renders\\shot.0001.png"), "shot.0001");
    assert.deepEqual(stub.shellSplit(`-b -y --python-expr "print('x y')"`), ["-b", "-y", "--python-expr", "print('x y')"]);
    assert.throws(() => stub.author.Task(" ", "blender"), /name is required/);
    assert.equal(stub.author.Command("echo", { message: "x" }).totalStepCount, 0);
});

test("blend-relative paths take the add-on's resolved values, and are refused without them", () => {
    // Flamenco's Blender add-on evaluates the hidden KEY_resolved settings next to the saved .blend
    const { JOB_TYPE } = stub.loadJobType(SCRIPT);
    for (const key of ["input_folder", "output_folder", "checkpoint"]) {
        const hidden = JOB_TYPE.settings.find((s) => s.key === `${key}_resolved`);
        assert.equal(hidden.visible, "hidden", key);
        assert.match(hidden.eval, new RegExp(`abspath\\(settings\\.${key}\\)`), key);
    }
    const job = compile({ input_folder: "//photos", input_folder_resolved: "/projects/street/photos",
        image_count: 3, output_folder: "//splats/", output_folder_resolved: "/projects/street/splats",
        checkpoint: "//../models/sharp.pt", checkpoint_resolved: "/projects/models/sharp.pt", chunk_size: 2 });
    const args = job.tasks[1].commands[0].parameters.args;
    const after = (option) => args[args.indexOf(option) + 1];
    assert.equal(after("-i"), "/projects/street/photos");
    assert.equal(after("-o"), "/projects/street/splats");
    assert.equal(after("--checkpoint"), "/projects/models/sharp.pt");
    assert.equal(after("--failures-file"), "/projects/street/splats/sharp-failures-2-2.txt");
    assert.ok(!args.some((arg) => arg.startsWith("//")), args.join(" "));
    // an absolute path is taken as given; its (empty) resolved value is not needed
    const plain = compile({ ...BASE, output_folder_resolved: "" }).tasks[0].commands[0].parameters.args;
    assert.equal(plain[plain.indexOf("-o") + 1], "/shared/splats");
    const refused = [
        [{ ...BASE, input_folder: "//photos" }, /input_folder '\/\/photos' is relative to the submitted \.blend file/],
        [{ ...BASE, output_folder: "//out", output_folder_resolved: "" }, /output_folder '\/\/out' is relative/],
        [{ ...BASE, checkpoint: "//sharp.pt", checkpoint_resolved: "//sharp.pt" }, /checkpoint '\/\/sharp.pt' is/],
        [{ output_folder: "/out", input_files: "/p/a.jpg;//b.jpg" }, /input_files names '\/\/b.jpg', a path relative/],
    ];
    for (const [settings, message] of refused) {
        assert.throws(() => compile(settings), message, JSON.stringify(settings));
    }
    assert.throws(() => compile({ ...BASE, input_folder: "//photos" }), /give an absolute path on shared storage/);
});

// A job-type script written to a temporary file, loaded by the stub.
function scriptFile(source) {
    const folder = fs.mkdtempSync(nodePath.join(os.tmpdir(), "flamenco-stub-"));
    const file = nodePath.join(folder, "probe.js");
    fs.writeFileSync(file, source);
    return file;
}

const PROBE_TYPE = 'const JOB_TYPE = { label: "probe", settings: [] };\n';

test("the stub runs job scripts in strict mode, as Flamenco's goja.Compile(..., strict=true) does", () => {
    const sloppy = scriptFile(PROBE_TYPE + "function compileJob(job) { undeclared = 1; }\n");
    assert.throws(() => stub.compile(sloppy, { settings: {} }), /undeclared is not defined/);
    const octal = scriptFile(PROBE_TYPE + "const mode = 0755;\nfunction compileJob(job) {}\n");
    assert.throws(() => stub.loadJobType(octal), /Octal literals are not allowed in strict mode/);
    const self = scriptFile(PROBE_TYPE + "function compileJob(job) { print(this === undefined); }\n");
    assert.deepEqual(stub.compile(self, { settings: {} }).log, [["print", [true]]]);
});

test("the job object has goja's field names for Flamenco's AuthoredJob and takes no new properties", () => {
    const probe = scriptFile(PROBE_TYPE + `function compileJob(job) {
        print(job.name, job.jobType, job.priority, job.status, job.settings.x, job.metadata.who,
            job.storage.shamanCheckoutID, typeof job.jobID, typeof job.workerTagUUID, Array.isArray(job.tasks),
            job.type, job.id);
        try { job.extra = 1; } catch (e) { print(e instanceof TypeError); }
        const task = author.Task("t", "misc");
        task.addCommand(author.Command("echo", { message: "before" }));
        job.addTask(task);
        task.addCommand(author.Command("echo", { message: "after" })); // Go stored a copy: not in the job
        print(typeof task.uUID, task.uuid, require("path") === path);
    }\n`);
    const job = stub.compile(probe, { name: "n", type: "probe", priority: 40, settings: { x: 1 },
        metadata: { who: "me" } });
    assert.deepEqual(job.log, [
        ["print", ["n", "probe", 40, "under-construction", 1, "me", "", "string", "string", true, undefined,
            undefined]],
        ["print", [true]],
        ["print", ["string", undefined, true]],
    ]);
    assert.deepEqual(job.tasks[0].commands.map((c) => c.parameters.message), ["before"]);
});

test("the stub's path.join is Go's path.Join then ToSlash, as Flamenco's crosspath.Join", () => {
    assert.equal(stub.path.join("/shared/splats/", "sharp-failures-0-9.txt"), "/shared/splats/sharp-failures-0-9.txt");
    assert.equal(stub.path.join("D:\\splats", "x.txt"), "D:/splats/x.txt");
    assert.equal(stub.path.join("a\\..", "b"), "a/../b"); // Go cleans before the backslashes become slashes
    assert.equal(stub.path.join("//photos", "x"), "/photos/x"); // why '//' paths must be resolved first
    assert.equal(stub.path.join("", ""), "");
    assert.equal(stub.path.join("a", ".."), ".");
});
