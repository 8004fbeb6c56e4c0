// SPDX-License-Identifier: GPL-3.0-or-later
//
// Flamenco 3.x job type "sharp-convert": photos -> 3D Gaussian splats with the SHARP from Image
// Blender extension, split over workers. Install: copy this file into the `scripts/` folder next to
// the flamenco-manager executable, restart the Manager, then "Refresh from Manager" in Flamenco's
// Blender add-on (docs/farm.md).
//
// Job scripts cannot look at files, so the job is split by index ranges of the batch command's
// sorted list of photos: every task runs, on the worker's Blender with the extension installed,
//
//     blender -b -y -c sharp predict -i INPUT... -o OUTPUT --range A-B --skip-existing
//         --allow-failures --failures-file OUTPUT/sharp-failures-A-B.txt ...
//
// which lists the inputs itself, in the same order on every machine, and converts photos A to B
// (0-based, inclusive). `--skip-existing` makes a re-queued task finish only what is missing; a
// photo that cannot be converted is listed in the task's failures file and does not fail the task
// (only a task where every photo failed does). A task takes one step per photo (the command prints
// a `Time: ...` line for each; Flamenco 3.8+ shows them as the task's progress).
//
// Flamenco runs this script in strict mode (goja) and gives compileJob a Go object whose fields
// are lower-camel-case (`job.settings`, `job.name`, `job.jobType`, ...) and which takes no new
// properties. The choice lists below are the `sharp predict` command's own; tests/farm checks
// that they stay equal.

const FORMATS = ["ply", "blend", "both", "compressed-ply", "spz", "glb", "sog", "splat", "usd"]; // --format (one kind each)
const DEVICES = ["auto", "cuda", "mps", "cpu"]; // --device
const PRECISIONS = ["auto", "fp32", "fp16", "bf16"]; // --precision
const RENDER_ENGINES = ["cycles", "exact"]; // --render-engine
const NO_MOVE = "none";
const MOVES = [NO_MOVE, "DOLLY_IN", "ORBIT", "SWING", "RISE", "KEN_BURNS"]; // no move, or a --move preset
const DEFAULT_FRAMES = 48; // --frames
const MIN_FRAMES = 2;

// A blend-relative path ("//photos", what Blender's file browser gives with "Relative Path" on)
// means nothing on a worker. Flamenco's Blender add-on evaluates each hidden setting's `eval` at
// submission, next to the saved .blend, so KEY_resolved carries KEY made absolute (empty when KEY
// is not blend-relative); compileJob takes it for such a KEY and refuses the job without it.
function resolvedPathSetting(key, label) {
    return {
        key: `${key}_resolved`, type: "string", visible: "hidden",
        eval: `str(abspath(settings.${key})) if settings.${key}.startswith('//') else ''`,
        description: `${label} made absolute when it is relative to the submitted .blend file ('//...')`,
    };
}

const JOB_TYPE = {
    label: "SHARP Convert Photos",
    description: "Photos to 3D Gaussian splats (PLY files and/or Blender scenes) with the SHARP from Image " +
        "extension, one task per chunk of the sorted photo list",
    settings: [
        { key: "input_folder", type: "string", subtype: "dir_path", visible: "submission",
          description: "Folder of photos on shared storage, searched recursively (or give input_files)" },
        resolvedPathSetting("input_folder", "input_folder"),
        { key: "input_files", type: "string", visible: "submission",
          description: "Instead of a folder: the photos' absolute paths, separated by ';' or new lines" },
        { key: "image_count", type: "int32", default: 0, propargs: { min: 0 }, visible: "submission",
          description: "How many photos input_folder holds: the count " +
              "'blender -b -c sharp predict -i FOLDER -o OUTPUT --list' prints (not needed with input_files)" },
        { key: "output_folder", type: "string", subtype: "dir_path", required: true, visible: "submission",
          description: "Folder for the outputs, on shared storage (created if needed)" },
        resolvedPathSetting("output_folder", "output_folder"),
        { key: "format", type: "string", choices: FORMATS, default: "both", required: true, visible: "submission",
          description: "'ply': ml-sharp PLY files; 'blend': one Blender scene per photo; 'both'" },
        { key: "render", type: "bool", default: false, visible: "submission",
          description: "Also a quick render from each photo's camera (NAME_render.png; needs blend or both)" },
        { key: "render_engine", type: "string", choices: RENDER_ENGINES, default: "cycles", visible: "submission",
          description: "What render renders with: 'cycles' (the saved scene, as F12 would) or 'exact' " +
              "(the splats through the exact 3DGS renderer)" },
        { key: "move", type: "string", choices: MOVES, default: NO_MOVE, visible: "submission",
          description: "A camera move added to each scene, sized by its depth (needs blend or both); " +
              "with render also rendered to NAME_move.mp4" },
        { key: "frames", type: "int32", default: DEFAULT_FRAMES, propargs: { min: MIN_FRAMES }, visible: "submission",
          description: "Frames of the camera move" },
        { key: "device", type: "string", choices: DEVICES, default: "auto", visible: "submission",
          description: "Where SHARP runs on the worker ('auto': CUDA, then MPS, then the CPU)" },
        { key: "precision", type: "string", choices: PRECISIONS, default: "auto", visible: "submission",
          description: "Inference precision ('auto': bf16 (else fp16) on CUDA, fp16 on MPS, fp32 on the CPU)" },
        { key: "checkpoint", type: "string", subtype: "file_path", visible: "submission",
          description: "SHARP weights (sharp_2572gikvuh.pt) on shared storage; empty: each worker's " +
              "$SHARP_CHECKPOINT or torch hub cache" },
        resolvedPathSetting("checkpoint", "checkpoint"),
        { key: "chunk_size", type: "int32", default: 20, propargs: { min: 1 }, visible: "submission",
          description: "Photos per task; the model loads once per task (seconds on a GPU), so tens are fine" },
    ],
};

function compileJob(job) {
    const settings = job.settings;
    const inputs = inputArguments(settings);
    const count = imageCount(settings, inputs);
    const output = pathSetting(settings, "output_folder");
    if (!output) {
        throw "output_folder is required: the folder (on shared storage) for the outputs";
    }
    const options = predictOptions(settings);
    const chunkSize = integerSetting(settings, "chunk_size", 20);
    if (chunkSize < 1) {
        throw `chunk_size must be a whole number of at least 1; got ${settings.chunk_size}`;
    }
    for (const chunk of indexChunks(count, chunkSize)) {
        const range = `${chunk.first}-${chunk.last}`;
        const args = ["sharp", "predict", "-i"].concat(inputs, ["-o", output], options, [
            "--range", range, "--skip-existing",
            "--allow-failures", "--failures-file", path.join(output, `sharp-failures-${range}.txt`),
        ]);
        const task = author.Task(`sharp-${range}`, "blender");
        task.addCommand(author.Command("blender-render", {
            exe: "{blender}",
            exeArgs: "{blenderArgs}", // the Manager's Blender arguments, "-b -y" by default
            argsBefore: [],
            // No .blend to open: the command builds its own scenes. Workers put `blendfile` between
            // argsBefore and args, and before Flamenco 3.5 refuse an empty one, so it carries the
            // command's own first argument: `blender -b -y -c sharp predict ...` on every version.
            blendfile: "-c",
            args: args,
        }, chunk.last - chunk.first + 1));
        job.addTask(task);
    }
}

// --format ... --checkpoint ... --render ... --move ...: the same for every task.
function predictOptions(settings) {
    const format = choiceSetting(settings, "format", "both", FORMATS);
    const render = settings.render === true;
    const engine = choiceSetting(settings, "render_engine", "cycles", RENDER_ENGINES);
    const move = choiceSetting(settings, "move", NO_MOVE, MOVES);
    const frames = integerSetting(settings, "frames", DEFAULT_FRAMES);
    if (render && format === "ply") {
        throw "render needs format 'blend' or 'both': it renders the Blender scene";
    }
    if (move !== NO_MOVE && format === "ply") {
        throw "move needs format 'blend' or 'both': it animates the Blender scene's camera";
    }
    if (frames < MIN_FRAMES) {
        throw `frames must be a whole number of at least ${MIN_FRAMES}; got ${settings.frames}`;
    }
    const options = ["--format", format,
        "--device", choiceSetting(settings, "device", "auto", DEVICES),
        "--precision", choiceSetting(settings, "precision", "auto", PRECISIONS)];
    const checkpoint = pathSetting(settings, "checkpoint");
    if (checkpoint) {
        options.push("--checkpoint", checkpoint);
    }
    if (render) {
        options.push("--render", "--render-engine", engine);
    }
    if (move !== NO_MOVE) {
        options.push("--move", move, "--frames", String(frames));
    }
    return options;
}

// The -i arguments: the folder, or the listed files (each once, in the order given; the command sorts).
function inputArguments(settings) {
    const folder = pathSetting(settings, "input_folder");
    const files = stringSetting(settings, "input_files", "").split(/[;\r\n]+/)
        .map((name) => name.trim()).filter((name) => name !== "");
    if (folder && files.length) {
        throw "give input_folder or input_files, not both";
    }
    if (!folder && !files.length) {
        throw "input_folder or input_files is required: the photos to convert";
    }
    if (folder) {
        return [folder];
    }
    const unique = [];
    for (const name of files) {
        if (isBlendRelative(name)) {
            throw `input_files names '${name}', a path relative to the submitted .blend file ('//'), which ` +
                "the workers do not have; give absolute paths on shared storage";
        }
        if (unique.indexOf(name) < 0) {
            unique.push(name);
        }
    }
    return unique;
}

function imageCount(settings, inputs) {
    const given = integerSetting(settings, "image_count", 0);
    if (stringSetting(settings, "input_folder", "")) {
        if (given < 1) {
            throw "image_count must be at least 1: how many photos input_folder holds (see " +
                "'blender -b -c sharp predict -i FOLDER -o OUTPUT --list')";
        }
        return given;
    }
    if (given && given !== inputs.length) {
        throw `image_count is ${given} but input_files names ${inputs.length} photos; leave image_count at 0`;
    }
    return inputs.length;
}

// [{first, last}, ...]: 0..count-1 in runs of chunkSize, the last one shorter.
function indexChunks(count, chunkSize) {
    const chunks = [];
    for (let first = 0; first < count; first += chunkSize) {
        chunks.push({ first: first, last: Math.min(first + chunkSize, count) - 1 });
    }
    return chunks;
}

function isBlendRelative(value) {
    return value.slice(0, 2) === "//";
}

// A path setting as the workers can use it: a blend-relative one replaced by KEY_resolved.
function pathSetting(settings, key) {
    const given = stringSetting(settings, key, "");
    if (!isBlendRelative(given)) {
        return given;
    }
    const resolved = stringSetting(settings, `${key}_resolved`, "");
    if (resolved && !isBlendRelative(resolved)) {
        return resolved;
    }
    throw `${key} '${given}' is relative to the submitted .blend file ('//'), which the workers do not ` +
        "have; submit from Flamenco's Blender add-on with the .blend saved (it makes such paths absolute), " +
        "or give an absolute path on shared storage";
}

function stringSetting(settings, key, fallback) {
    const value = settings[key];
    if (value === undefined || value === null) {
        return fallback;
    }
    if (typeof value !== "string") {
        throw `${key} must be text; got ${JSON.stringify(value)}`;
    }
    return value.trim();
}

function choiceSetting(settings, key, fallback, choices) {
    const value = stringSetting(settings, key, "") || fallback;
    if (choices.indexOf(value) < 0) {
        throw `${key} must be one of ${choices.join(", ")}; got '${value}'`;
    }
    return value;
}

function integerSetting(settings, key, fallback) {
    const value = settings[key];
    if (value === undefined || value === null || value === "") {
        return fallback;
    }
    const number = typeof value === "number" ? value : Number(value);
    if (!Number.isInteger(number)) {
        throw `${key} must be a whole number; got ${JSON.stringify(value)}`;
    }
    return number;
}
