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
//     blender -b -y -c sharp predict -i INPUT... -o OUTPUT --range A-B --skip-existing ...
//
// which lists the inputs itself, in the same order on every machine, and converts photos A to B
// (0-based, inclusive). `--skip-existing` makes a re-queued task finish only what is missing.
// A task takes one step per photo (the command prints a `Time: ...` line for each).

const FORMATS = ["ply", "blend", "both"];
const DEVICES = ["auto", "cuda", "mps", "cpu"];
const PRECISIONS = ["auto", "fp32", "fp16", "bf16"];

const JOB_TYPE = {
    label: "SHARP Convert Photos",
    description: "Photos to 3D Gaussian splats (PLY files and/or Blender scenes) with the SHARP from Image " +
        "extension, one task per chunk of the sorted photo list",
    settings: [
        { key: "input_folder", type: "string", subtype: "dir_path", visible: "submission",
          description: "Folder of photos on shared storage, searched recursively (or give input_files)" },
        { key: "input_files", type: "string", visible: "submission",
          description: "Instead of a folder: the photos' paths, separated by ';' or new lines" },
        { key: "image_count", type: "int32", default: 0, propargs: { min: 0 }, visible: "submission",
          description: "How many photos input_folder holds: the count " +
              "'blender -b -c sharp predict -i FOLDER -o OUTPUT --list' prints (not needed with input_files)" },
        { key: "output_folder", type: "string", subtype: "dir_path", required: true, visible: "submission",
          description: "Folder for the outputs, on shared storage (created if needed)" },
        { key: "format", type: "string", choices: FORMATS, default: "both", required: true, visible: "submission",
          description: "'ply': ml-sharp PLY files; 'blend': one Blender scene per photo; 'both'" },
        { key: "render", type: "bool", default: false, visible: "submission",
          description: "Also a quick Cycles render from each photo's camera (NAME_render.png; needs blend or both)" },
        { key: "device", type: "string", choices: DEVICES, default: "auto", visible: "submission",
          description: "Where SHARP runs on the worker ('auto': CUDA, then MPS, then the CPU)" },
        { key: "precision", type: "string", choices: PRECISIONS, default: "auto", visible: "submission",
          description: "Inference precision ('auto': bf16 (else fp16) on CUDA, fp16 on MPS, fp32 on the CPU)" },
        { key: "checkpoint", type: "string", subtype: "file_path", visible: "submission",
          description: "SHARP weights (sharp_2572gikvuh.pt) on shared storage; empty: each worker's " +
              "$SHARP_CHECKPOINT or torch hub cache" },
        { key: "chunk_size", type: "int32", default: 20, propargs: { min: 1 }, visible: "submission",
          description: "Photos per task; the model loads once per task (seconds on a GPU), so tens are fine" },
    ],
};

function compileJob(job) {
    const settings = job.settings;
    const inputs = inputArguments(settings);
    const count = imageCount(settings, inputs);
    const output = stringSetting(settings, "output_folder", "");
    if (!output) {
        throw "output_folder is required: the folder (on shared storage) for the outputs";
    }
    const format = choiceSetting(settings, "format", "both", FORMATS);
    const device = choiceSetting(settings, "device", "auto", DEVICES);
    const precision = choiceSetting(settings, "precision", "auto", PRECISIONS);
    const render = settings.render === true;
    if (render && format === "ply") {
        throw "render needs format 'blend' or 'both': it renders the Blender scene";
    }
    const chunkSize = integerSetting(settings, "chunk_size", 20);
    if (chunkSize < 1) {
        throw `chunk_size must be a whole number of at least 1; got ${settings.chunk_size}`;
    }
    const checkpoint = stringSetting(settings, "checkpoint", "");

    for (const chunk of indexChunks(count, chunkSize)) {
        const range = `${chunk.first}-${chunk.last}`;
        const args = ["-c", "sharp", "predict", "-i"].concat(inputs, [
            "-o", output, "--format", format, "--device", device, "--precision", precision,
            "--range", range, "--skip-existing",
        ]);
        if (checkpoint) {
            args.push("--checkpoint", checkpoint);
        }
        if (render) {
            args.push("--render");
        }
        const task = author.Task(`sharp-${range}`, "blender");
        const command = author.Command("blender-render", {
            exe: "{blender}",
            exeArgs: "{blenderArgs}", // the Manager's Blender arguments, "-b -y" by default
            argsBefore: [],
            blendfile: "", // no file to open: the command builds its own scenes
            args: args,
        }, chunk.last - chunk.first + 1);
        task.addCommand(command);
        job.addTask(task);
    }
}

// The -i arguments: the folder, or the listed files (each once, in the order given; the command sorts).
function inputArguments(settings) {
    const folder = stringSetting(settings, "input_folder", "");
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
