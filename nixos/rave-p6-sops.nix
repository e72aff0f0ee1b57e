# Wires the RAVE P6 secrets to sops-nix: declares every secret of
# nixos/facts.nix as sops.secrets.<name> (owner from the facts, mode 0400)
# and points services.rave-p6.secrets.<name> at its decrypted path.
#
# Import it next to sops-nix's module (inputs.sops-nix.nixosModules.sops)
# and set sops.defaultSopsFile. Tests leave it out and put plain files at the
# same paths, which is why rave-p6.nix itself never refers to config.sops.
{ config, lib, ... }:
let
  facts = import ./facts.nix;
in
{
  sops.secrets = lib.mapAttrs (_name: owner: {
    inherit owner;
    mode = "0400";
  }) facts.secrets.files;

  services.rave-p6.secrets = lib.mapAttrs (
    name: _owner: config.sops.secrets.${name}.path
  ) facts.secrets.files;
}
