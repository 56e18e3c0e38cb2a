"""`pip install .` for the tracemark Python package (python/tracemark over the C++ library).

The extension is built by CMake (TRACEMARK_PYTHON=ON, no tests or benchmarks) into a build folder
of setuptools', and the assembled package folder is installed as is. Without network access to
PyPI, install with the build tools Debian provides (python3-setuptools, python3-wheel,
pybind11-dev):

    python3 -m pip install --no-build-isolation .
"""

import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        # TRACEMARK_BUILD_DIR: an existing build folder configured with TRACEMARK_PYTHON=ON (as
        # scripts/build.sh makes it) is reused as it is, without reconfiguring it.
        build = os.environ.get("TRACEMARK_BUILD_DIR")
        if build:
            build = os.path.abspath(build)
        else:
            build = os.path.abspath(os.path.join(self.build_temp, "cmake"))
            os.makedirs(build, exist_ok=True)
            gen = ["-G", "Ninja"] if shutil.which("ninja") else []
            subprocess.run(["cmake", "-S", ROOT, "-B", build, *gen, "-DCMAKE_BUILD_TYPE=Release",
                            "-DTRACEMARK_PYTHON=ON", "-DTRACEMARK_BUILD_TESTS=OFF",
                            "-DTRACEMARK_BUILD_BENCH=OFF",
                            f"-DPython3_EXECUTABLE={sys.executable}"], check=True)
        subprocess.run(["cmake", "--build", build, "--target", "_tracemark", "-j",
                        str(os.cpu_count() or 1)], check=True)
        built = os.path.join(build, "python", "tracemark")
        dest = os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext.name)))
        os.makedirs(dest, exist_ok=True)
        for name in os.listdir(built):
            if name.endswith(".so"):
                shutil.copy2(os.path.join(built, name), dest)


setup(
    name="tracemark",
    version="0.1.0",
    description="Per-account LLM watermarks in the sampling loop, and their detection",
    packages=["tracemark"],
    package_dir={"tracemark": "python/tracemark"},
    ext_modules=[Extension("tracemark._tracemark", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.9",
    install_requires=["numpy"],
    zip_safe=False,
)
