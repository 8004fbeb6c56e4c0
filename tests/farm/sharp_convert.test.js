// SPDX-License-Identifier: GPL-3.0-or-later
// The Flamenco job type farm/flamenco/sharp_convert.js, compiled against tests/farm/flamenco_stub.js.
// Run: node --test tests/farm/sharp_convert.test.js   (Node 18+; tests/farm/test_flamenco.py runs it from pytest)

"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
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
        "precision", "checkpoint", "chunk_size", "render"]) {
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

test("each task runs the batch command on the worker's Blender with its range", () => {
    const job = compile({ ...BASE, chunk_size: 10, format: "blend", device: "cuda", precision: "bf16",
        checkpoint: "/shared/models/sharp_2572gikvuh.pt", render: true });
    assert.deepEqual(job.tasks.map((t) => t.name), ["sharp-0-9", "sharp-10-19", "sharp-20-24"]);
    const task = job.tasks[2];
    assert.equal(task.type, "blender");
    assert.equal(task.commands.length, 1);
    const command = task.commands[0];
    assert.equal(command.name, "blender-render");
    assert.equal(command.totalStepCount, 5); // one step per photo: a "Time:" line each
    assert.deepEqual({ ...command.parameters, args: undefined }, {
        exe: "{blender}", exeArgs: "{blenderArgs}", argsBefore: [], blendfile: "", args: undefined });
    assert.deepEqual(command.parameters.args, [
        "-c", "sharp", "predict", "-i", "/shared/photos", "-o", "/shared/splats", "--format", "blend",
        "--device", "cuda", "--precision", "bf16", "--range", "20-24", "--skip-existing",
        "--checkpoint", "/shared/models/sharp_2572gikvuh.pt", "--render"]);
});

test("defaults apply to settings a submission leaves out (the Manager fills none in)", () => {
    const job = compile({ ...BASE });
    assert.deepEqual(ranges(job), [[0, 19], [20, 24]]);
    const args = job.tasks[0].commands[0].parameters.args;
    assert.deepEqual(args.slice(args.indexOf("--format"), args.indexOf("--range")),
        ["--format", "both", "--device", "auto", "--precision", "auto"]);
    assert.ok(!args.includes("--render") && !args.includes("--checkpoint"));
});

test("a list of files: each given once to every task, counted by the script", () => {
    const job = compile({ output_folder: "/out", chunk_size: 2,
        input_files: "/p/b.jpg; /p/a.jpg\n/p/sub/c.png\r\n/p/a.jpg;;" });
    assert.deepEqual(ranges(job), [[0, 1], [2, 2]]);
    for (const task of job.tasks) {
        const args = task.commands[0].parameters.args;
        assert.deepEqual(args.slice(3, args.indexOf("-o")), ["-i", "/p/b.jpg", "/p/a.jpg", "/p/sub/c.png"]);
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
        [{ ...BASE, format: "obj" }, /format must be one of ply, blend, both; got 'obj'/],
        [{ ...BASE, device: "tpu" }, /device must be one of auto, cuda, mps, cpu/],
        [{ ...BASE, precision: "int8" }, /precision must be one of/],
        [{ ...BASE, format: "ply", render: true }, /render needs format 'blend' or 'both'/],
        [{ ...BASE, input_files: "/p/a.jpg" }, /not both/],
        [{ output_folder: "/out" }, /input_folder or input_files is required/],
        [{ ...BASE, image_count: -1 }, /image_count must be at least 1/],
        [{ ...BASE, input_folder: 7 }, /input_folder must be text/],
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
