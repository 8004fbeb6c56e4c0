// SPDX-License-Identifier: GPL-3.0-or-later
//
// A stand-in for what Flamenco Manager 3.x gives a job-type script, for testing job compilers with
// Node (no Flamenco binary can be built or fetched here). Written from Flamenco's job compiler
// (internal/manager/job_compilers: scripts.go, job_compilers.go, author.go, js_globals.go,
// js_path.go; pkg/crosspath) and the goja version it uses:
//
// - the script is compiled in strict mode (`goja.Compile(filename, script, true)`) and run as a
//   plain script (not a module) with globals `author`, `path`, `process`, `frameChunker`,
//   `frameCount`, `formatTimestampLocal`, `shellSplit`, `print`, `alert` and `require` (Flamenco's
//   modules `author`, `path`, `process`, and scripts of its scripts folder; here the modules only);
//   no file-system or network access;
// - it defines `JOB_TYPE` and `compileJob(job)`; the Manager reads them as globals (a top-level
//   `const` counts) and calls compileJob once per submitted job;
// - `job` is a Go `*AuthoredJob` seen through goja's UncapFieldNameMapper: its fields are `jobID`,
//   `workerTagUUID`, `name`, `jobType`, `priority`, `status`, `created`, `settings` (the submitted
//   values only: defaults are not filled in), `metadata`, `storage` (`shamanCheckoutID`), `tasks`,
//   and its method `addTask(task)`, which stores a copy of the task as it is then. A host object
//   takes no new properties: in strict mode assigning one throws a TypeError. (`job.type`,
//   `job.id` do not exist.) `created` is a Go time.Time there, a Date here;
// - `author.Task(name, type)`: both trimmed and required (an empty one throws), priority 50; the task
//   has `uUID`, `name`, `type`, `priority`, `commands`, `dependencies`, `addCommand(cmd)`,
//   `addDependency(task)`;
// - `author.Command(name, parameters, totalStepCount)`: a missing step count is 0 ("no steps";
//   before Flamenco 3.8 the third argument is ignored);
// - `path.join` is Go's path.Join (which cleans the result) followed by ToSlash;
// - a thrown value fails the submission with that message.

"use strict";

const fs = require("node:fs");
const vm = require("node:vm");
const crypto = require("node:crypto");

// Go structs seen through goja: the fields' names with a lower-case first letter ("UUID" -> "uUID"),
// and no new properties (Object.seal: assigning one throws in strict mode, as goja's host objects do).
class AuthoredTask {
    constructor(name, type) {
        this.uUID = crypto.randomUUID();
        this.name = name;
        this.type = type;
        this.priority = 50;
        this.commands = [];
        this.dependencies = [];
        Object.seal(this);
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
        Object.seal(this);
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

// Go's path.Clean: one slash between parts, no "." parts, ".." removes the part before it (and
// nothing at the root), "" becomes "."
function cleanPath(p) {
    const rooted = p.startsWith("/");
    const out = [];
    for (const part of p.split("/")) {
        if (part === "" || part === ".") {
            continue;
        }
        if (part !== "..") {
            out.push(part);
        } else if (out.length && out[out.length - 1] !== "..") {
            out.pop();
        } else if (!rooted) {
            out.push(part);
        }
    }
    return (rooted ? "/" : "") + out.join("/") || (rooted ? "/" : ".");
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
    // crosspath.Join: Go's path.Join (clean the "/"-joined parts; backslashes are plain characters
    // there), then backslashes to slashes
    join(...parts) {
        const kept = parts.map(String).filter((part) => part !== "");
        return kept.length ? toSlash(cleanPath(kept.join("/"))) : "";
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

// Load a job-type script the way the Manager does: strict mode, a fresh context holding only Flamenco's globals.
function loadJobType(scriptPath, options = {}) {
    const log = [];
    const process = Object.freeze({ platform: options.platform || "linux" });
    const modules = { author, path, process };
    const sandbox = {
        author,
        path,
        process,
        frameChunker,
        frameCount,
        formatTimestampLocal,
        shellSplit,
        print: (...args) => log.push(["print", args]),
        alert: (...args) => log.push(["alert", args]),
        require(name) { // goja_nodejs' registry with Flamenco's native modules
            if (!Object.prototype.hasOwnProperty.call(modules, name)) {
                throw new Error("Invalid module");
            }
            return modules[name];
        },
    };
    const context = vm.createContext(sandbox);
    const source = fs.readFileSync(scriptPath, "utf8");
    // goja.Compile(..., strict=true): the whole script is strict code (the directive on the first
    // line, so line numbers in errors stay the file's)
    vm.runInContext(`"use strict"; ${source}`, context, { filename: scriptPath });
    // the Manager's runtime.Get(name): global declarations, a top-level `const` included
    const found = vm.runInContext("({ JOB_TYPE: typeof JOB_TYPE === 'undefined' ? undefined : JOB_TYPE, " +
        "compileJob: typeof compileJob === 'undefined' ? undefined : compileJob })", context);
    const { JOB_TYPE, compileJob } = found;
    if (JOB_TYPE === undefined || typeof JOB_TYPE !== "object") {
        throw new Error(`script (${scriptPath}) does not define a JOB_TYPE object`);
    }
    if (typeof compileJob !== "function") {
        throw new Error(`script (${scriptPath}) does not define a compileJob(job) function`);
    }
    return { JOB_TYPE, compileJob, log };
}

// The job object compileJob gets: a Go *AuthoredJob through goja (field names as the header says).
function authoredJob(submitted, options) {
    const storage = submitted.storage || {};
    const job = {
        jobID: crypto.randomUUID(),
        workerTagUUID: submitted.worker_tag || "",
        name: submitted.name || "job",
        jobType: submitted.type || "",
        priority: submitted.priority === undefined ? 50 : submitted.priority,
        status: "under-construction",
        created: options.created || new Date(),
        settings: Object.assign({}, submitted.settings || {}),
        metadata: Object.assign({}, submitted.metadata || {}),
        storage: Object.seal({ shamanCheckoutID: storage.shaman_checkout_id || "" }),
        tasks: [],
        addTask(task) {
            if (!(task instanceof AuthoredTask)) {
                throw new TypeError("job.addTask() takes a task made by author.Task()");
            }
            // Go appends a copy of the struct: commands added to the task afterwards are not in the job
            this.tasks.push({ uUID: task.uUID, name: task.name, type: task.type, priority: task.priority,
                commands: task.commands.slice(), dependencies: task.dependencies });
        },
    };
    return Object.seal(job);
}

// Compile a submitted job ({name, type, priority, settings, metadata}, as POST /api/v3/jobs takes it)
// into an authored job.
function compile(scriptPath, submitted = {}, options = {}) {
    const { compileJob, log } = loadJobType(scriptPath, options);
    const job = authoredJob(submitted, options);
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
        jobID: job.jobID, name: job.name, jobType: job.jobType, priority: job.priority, settings: job.settings,
        metadata: job.metadata,
        tasks: job.tasks.map((task) => ({
            uuid: task.uUID, name: task.name, type: task.type, priority: task.priority,
            commands: task.commands, dependencies: task.dependencies.map((dep) => dep.uUID),
        })),
    }));
    authored.log = log;
    return authored;
}

module.exports = { author, path, frameChunker, frameCount, shellSplit, formatTimestampLocal, loadJobType, compile,
    authoredJob, AuthoredTask, AuthoredCommand };
