# The NixOS VM tests, wired into the flake's checks (Linux only):
#   vm-minimal          a locked-down node; config, boot and security phases pass
#   vm-full-stack       the rave-p6 stack plus the validator: every check passes, verify passes
#   vm-tamper           a changed transcript or DSSE envelope fails verify (exit 1)
#   vm-security-fails   password auth on and an extra open port: security FAILS (exit 1)
{
  pkgs,
  spinup-smoke,
  modules,
}:
let
  fixtures = import ./fixtures.nix { inherit pkgs spinup-smoke; };
  args = {
    inherit
      pkgs
      spinup-smoke
      modules
      fixtures
      ;
  };
in
{
  vm-minimal = import ./minimal.nix args;
  vm-full-stack = import ./full-stack.nix args;
  vm-tamper = import ./tamper.nix args;
  vm-security-fails = import ./security-fails.nix args;
}
