# Link Debian's abseil from its static archives instead of ~30 shared objects.
# Every `berth` invocation pays dynamic-loader work per shared library (see
# docs/benchmarks.md); abseil is the bulk of it. Debian ships both forms, and
# the imported targets only name the .so, so point them at the .a beside it.
get_directory_property(_berth_imported IMPORTED_TARGETS)
foreach(_target IN LISTS _berth_imported)
  if(_target MATCHES "^absl::")
    get_target_property(_location ${_target} IMPORTED_LOCATION_NONE)
    if(_location MATCHES "^(.*)\\.so\\.[0-9.]+$")
      set(_archive "${CMAKE_MATCH_1}.a")
      if(EXISTS "${_archive}")
        set_target_properties(${_target} PROPERTIES IMPORTED_LOCATION_NONE "${_archive}")
      endif()
    endif()
  endif()
endforeach()
