from dataform_infra.cli import main

main()
