// SCIF apps in a build: what Apptainer's apps plugin makes of %appinstall,
// %appfiles, %appenv, %apprun, %apptest, %apphelp and %applabels, file for
// file, so that images built by berth run under Apptainer's `--app` and the
// other way round (formats.md §5.3).
//
// Each app gets /scif/apps/NAME/{bin,lib,scif/env} and
// /scif/data/NAME/{input,output}; under scif/: env/01-base.sh (the SCIF_*
// variables of the app), env/90-environment.sh (%appenv), runscript
// (%apprun), test (%apptest), runscript.help (%apphelp) and labels.json
// (SCIF_APP_NAME and %applabels). /.singularity.d/env/94-appsbase.sh
// exports every app's SCIF_APP*_NAME paths (empty without apps, as
// Apptainer writes it). %appfiles copy host files into the app's root;
// %appinstall bodies run at the end of %post, in the app's root.
//
// Privilege: none; these only describe files and copies, which the worker
// makes as the build's fakeroot user.
#pragma once

#include <string>

#include "berth/v1/build_worker.pb.h"
#include "deffile/definition.h"

namespace berth::daemon::build {

// The apps' directories and generated files, and 94-appsbase.sh.
v1::WriteFiles AppLayout(const deffile::Definition& stage);

// One app's %appfiles lines as copies into /scif/apps/NAME.
v1::CopyFiles AppFileCopies(const deffile::App& app);

// The text appended to %post: each app's %appinstall, in app order, run
// from the app's root after sourcing its 01-base.sh.
std::string AppInstalls(const deffile::Definition& stage);

}  // namespace berth::daemon::build
