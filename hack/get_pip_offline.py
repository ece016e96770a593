"""Stand-in for the get-pip script ansible-test downloads from a host this machine cannot reach.

ensurepip runs in a subprocess: in-process it sets PIP_CONFIG_FILE=/dev/null, which hides the
machine's pip.conf (and its CA bundle) from the pip that installs the requirements.
"""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'], stdout=subprocess.DEVNULL)
sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install'] + args))
