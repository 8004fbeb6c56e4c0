// SPDX-License-Identifier: GPL-3.0-or-later
//
// A stand-in for what Flamenco Manager 3.x gives a job-type script, for testing job compilers with
// Node (no Flamenco binary can be built or fetched here). Written from Flamenco's documentation and
// the behaviour of its job compiler (internal/manager/job_compilers: author.go, js_globals.go,
// js_path.go, job_compilers.go):
//
// - the script runs as a plain script (not a module) with globals `author`, `path`, `process`,
//   `frameChunker`, `frameCount`, `formatTimestampLocal`, `shellSplit`, `print`, `alert`, and no
//   file-system or network access (no `require`, no `fs`);
// - it defines `JOB_TYPE` and `compileJob(job)`; the Manager calls compileJob once per submitted job
//   with `job.name`, `job.type`, `job.priority`, `job.created`, `job.settings` (the submitted values
//   only: defaults are not filled in by the Manager), `job.metadata`, and `job.addTask(task)`;
// - `author.Task(name, type)`: both trimmed and required (an empty one throws), priority 50;
//   `task.addCommand(cmd)`, `task.addDependency(task)`;
// - `author.Command(name, parameters, totalStepCount)`: a missing step count is 0 ("no steps");
// - a thrown value fails the submission with that message.

"use strict";

const fs = require("node:fs");
const vm = require("node:vm");
const crypto = require("node:crypto");

class AuthoredTask {
    constructor(name, type) {
        this.uuid = crypto.randomUUID();
        this.name = name;
        this.type = type;
        this.priority = 50;
        this.commands = [];
        this.dependencies = [];
    }

    addCommand(command) {
        if (!(command instanceof AuthoredCommand)) {
            throw new TypeError("task.addCommand() takes a command made by author.Command()");
        }
        this.commands.push(command);
    }

    addDependency(task) {
        if (!(task instanceof AuthoredTask)) {
            throw new TypeError("task.addDependency() takes a task made by author.Task()");
        }
        this.dependencies.push(task);
    }
}

class AuthoredCommand {
    constructor(name, parameters, totalStepCount) {
        this.name = name;
        this.parameters = parameters;
        this.totalStepCount = totalStepCount;
    }
}

const author = Object.freeze({
    Task(name, taskType) {
        name = String(name === undefined ? "" : name).trim();
        taskType = String(taskType === undefined ? "" : taskType).trim();
        if (name === "") {
            throw new Error("author.Task(name, type): name is required");
        }
        if (taskType === "") {
            throw new Error("author.Task(name, type): type is required");
        }
        return new AuthoredTask(name, taskType);
    },
    Command(cmdName, parameters, totalStepCount) {
        // Go converts the arguments: a missing step count becomes 0, and so does a non-number
        const steps = Number.isFinite(totalStepCount) ? Math.trunc(totalStepCount) : 0;
        return new AuthoredCommand(String(cmdName), parameters || {}, steps);
    },
});

// crosspath: paths with either separator; results use forward slashes
function toSlash(p) {
    return String(p).replace(/\\/g, "/");
}

const path = Object.freeze({
    basename(p) {
        const s = toSlash(p).replace(/\/+$/, "");
        if (s === "") {
            return toSlash(p).startsWith("/") ? "/" : ".";
        }
        return s.slice(s.lastIndexOf("/") + 1);
    },
    dirname(p) {
        const s = toSlash(p);
        const i = s.lastIndexOf("/");
        if (i < 0) {
            return ".";
        }
        return i === 0 ? "/" : s.slice(0, i).replace(/\/+$/, "") || "/";
    },
    join(...parts) {
        const kept = parts.map(toSlash).filter((part) => part !== "");
        if (!kept.length) {
            return "";
        }
        const joined = kept.join("/").replace(/\/+/g, "/");
        const absolute = joined.startsWith("/");
        const out = [];
        for (const part of joined.split("/")) {
            if (part === "" || part === ".") {
                continue;
            }
            if (part === ".." && out.length && out[out.length - 1] !== "..") {
                out.pop();
            } else if (part !== ".." || !absolute) {
                out.push(part);
            }
        }
        return (absolute ? "/" : "") + out.join("/") || (absolute ? "/" : ".");
    },
    stem(p) {
        const base = path.basename(p);
        const dot = base.lastIndexOf(".");
        return dot > 0 ? base.slice(0, dot) : base;
    },
});

function invalidRange(range, message) {
    return new Error(`invalid range "${range}": ${message}`);
}

// js_globals.go frameRangeExplode: "1-3,7" or Blender's "1..3,7"; duplicates merged; sorted
function frameRangeExplode(frameRange) {
    const frames = new Set();
    const regular = String(frameRange).split("..").join("-");
    for (const part of regular.split(",")) {
        const startEnd = part.split("-");
        const parse = (text) => {
            const t = text.trim();
            if (!/^[+-]?\d+$/.test(t)) {
                throw invalidRange(regular, part);
            }
            return parseInt(t, 10);
        };
        if (startEnd.length === 1) {
            frames.add(parse(startEnd[0]));
        } else if (startEnd.length === 2) {
            const start = parse(startEnd[0]);
            const end = parse(startEnd[1]);
            for (let f = start; f <= end; f++) {
                frames.add(f);
            }
        } else {
            throw invalidRange(regular, part);
        }
    }
    return Array.from(frames).sort((a, b) => a - b);
}

// js_globals.go frameRangeMerge: runs of 3+ as "A-B", a run of two as "A,B"
function frameRangeMerge(frames) {
    const ranges = [];
    const append = (from, to) => {
        if (from === to) {
            ranges.push(String(from));
        } else if (from + 1 === to) {
            ranges.push(String(from), String(to));
        } else {
            ranges.push(`${from}-${to}`);
        }
    };
    let start = frames[0];
    let prev = frames[0];
    for (const frame of frames) {
        if (frame > prev + 1) {
            append(start, prev);
            start = frame;
        }
        prev = frame;
    }
    append(start, frames[frames.length - 1]);
    return ranges.join(",");
}

function frameChunker(frameRange, chunkSize) {
    const trimmed = String(frameRange === undefined ? "" : frameRange).trim();
    if (trimmed === "") {
        throw invalidRange(trimmed, "empty range");
    }
    if (!(chunkSize >= 1)) {
        throw new Error(`invalid chunk size, must be positive number: ${chunkSize}`);
    }
    const frames = frameRangeExplode(trimmed);
    if (!frames.length) {
        throw invalidRange(trimmed, "empty range");
    }
    const chunks = [];
    for (let i = 0; i < frames.length; i += chunkSize) {
        chunks.push(frameRangeMerge(frames.slice(i, Math.min(i + chunkSize, frames.length))));
    }
    return chunks;
}

function frameCount(frameRange) {
    return frameRangeExplode(frameRange).length;
}

function formatTimestampLocal(date) {
    const pad = (n) => String(n).padStart(2, "0");
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}_` +
        `${pad(date.getHours())}${pad(date.getMinutes())}${pad(date.getSeconds())}`;
}

// shlex-like: whitespace separates, quotes group, backslash escapes (outside single quotes)
function shellSplit(text) {
    const words = [];
    let word = null;
    let quote = null;
    for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (quote === "'") {
            if (c === "'") {
                quote = null;
            } else {
                word += c;
            }
        } else if (c === "\\" && i + 1 < text.length) {
            word = (word || "") + text[++i];
        } else if (quote === '"') {
            if (c === '"') {
                quote = null;
            } else {
                word += c;
            }
        } else if (c === "'" || c === '"') {
            quote = c;
            word = word || "";
        } else if (/\s/.test(c)) {
            if (word !== null) {
                words.push(word);
                word = null;
            }
        } else {
            word = (word || "") + c;
        }
    }
    if (quote) {
        throw new Error("EOF found when expecting closing quote");
    }
    if (word !== null) {
        words.push(word);
    }
    return words;
}

// Load a job-type script the way the Manager does: a fresh context holding only Flamenco's globals.
function loadJobType(scriptPath, options = {}) {
    const log = [];
    const sandbox = {
        author,
        path,
        process: Object.freeze({ platform: options.platform || "linux" }),
        frameChunker,
        frameCount,
        formatTimestampLocal,
        shellSplit,
        print: (...args) => log.push(["print", args]),
        alert: (...args) => log.push(["alert", args]),
    };
    const context = vm.createContext(sandbox);
    const source = fs.readFileSync(scriptPath, "utf8");
    // top-level `const`/`function` of a script: read them back the way the Manager's VM does
    vm.runInContext(source + "\n;globalThis.__jobType = { JOB_TYPE: typeof JOB_TYPE === 'undefined' ? " +
        "undefined : JOB_TYPE, compileJob: typeof compileJob === 'undefined' ? undefined : compileJob };",
    context, { filename: scriptPath });
    const { JOB_TYPE, compileJob } = context.__jobType;
    if (JOB_TYPE === undefined || typeof JOB_TYPE !== "object") {
        throw new Error(`script (${scriptPath}) does not define a JOB_TYPE object`);
    }
    if (typeof compileJob !== "function") {
        throw new Error(`script (${scriptPath}) does not define a compileJob(job) function`);
    }
    return { JOB_TYPE, compileJob, log };
}

// Compile a submitted job ({name, type, priority, settings, metadata}) into an authored job.
function compile(scriptPath, submitted = {}, options = {}) {
    const { compileJob, log } = loadJobType(scriptPath, options);
    const job = {
        id: crypto.randomUUID(),
        name: submitted.name || "job",
        type: submitted.type || "",
        priority: submitted.priority === undefined ? 50 : submitted.priority,
        created: options.created || new Date(),
        settings: Object.assign({}, submitted.settings || {}),
        metadata: Object.assign({}, submitted.metadata || {}),
        tasks: [],
        addTask(task) {
            if (!(task instanceof AuthoredTask)) {
                throw new TypeError("job.addTask() takes a task made by author.Task()");
            }
            this.tasks.push(task);
        },
    };
    try {
        compileJob(job);
    } catch (thrown) {
        // the Manager refuses the job with the thrown value as its message
        const error = new Error(String(thrown && thrown.message !== undefined ? thrown.message : thrown));
        error.thrown = thrown;
        throw error;
    }
    // what the Manager stores and hands to Workers: plain data (as JSON), dependencies by task UUID
    const authored = JSON.parse(JSON.stringify({
        id: job.id, name: job.name, type: job.type, priority: job.priority, settings: job.settings,
        metadata: job.metadata,
        tasks: job.tasks.map((task) => ({
            uuid: task.uuid, name: task.name, type: task.type, priority: task.priority,
            commands: task.commands, dependencies: task.dependencies.map((dep) => dep.uuid),
        })),
    }));
    authored.log = log;
    return authored;
}

module.exports = { author, path, frameChunker, frameCount, shellSplit, formatTimestampLocal, loadJobType, compile,
    AuthoredTask, AuthoredCommand };
